/* flank task launcher: runs one task of a generated Makefile.
 *
 *   flank-task SPEC_FILE RUN_DIR
 *
 * Compiled on first use by flank_ops/task/launcher.py (cc -O2); task_exec.py is
 * the pure-Python twin with the same command line and behaviour, used when no C
 * compiler exists. Keep the two in step.
 *
 * Why C: make starts this once per task; a Python interpreter per task costs
 * ~10x plain make on a DAG of small tasks, this costs ~1.2-1.7x.
 *
 * SPEC_FILE: a file, or `<specs file>/<name>`: entry <name> of a plan's one file of specs
 * (task_exec.py's encode_specs_file). A spec is NUL-separated key/value pairs written by
 * flank_ops/run/makefile.py:
 *   task, command, cwd, retries, retry_delay_s, timeout_s (0 = none),
 *   kill_grace_s, argv (repeated: exec directly, no shell), env (repeated, K=V).
 *
 * What it does (see task_exec.py's docstring for the record format):
 *   - RUN_DIR/tasks/<task>.json: "running" at each attempt, the result at the end
 *     (rewritten in place, emptied first: a reader never mixes two; see write_result);
 *   - RUN_DIR/logs/<task>.log: the task's stdout+stderr as produced (O_APPEND),
 *     read through a pipe that masks the values of the env vars FLANK_SECRET_NAMES
 *     names (the rule of run/secrets.py: every non-empty value, longest first);
 *   - RUN_DIR/logs/<task>.log.times: when each attempt and line began (format in
 *     task_exec.py's docstring), once the log has output or a second attempt begins;
 *   - retries with a doubling delay, a timeout that kills the whole process group,
 *     leftover background jobs of the group killed when the task ends,
 *     peak RSS from wait4, a readable line for exit 127/126.
 * Exit status: 0 on success, non-zero otherwise (so make -k skips dependents).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_ITEMS 4096
#define CHUNK 65536
#define EXIT_TIMED_OUT 124
#define TIMES_INTERVAL_MS 100

struct spec {
    const char *task, *command, *cwd;
    const char *argv[MAX_ITEMS + 1];
    int argc;
    const char *env[MAX_ITEMS];
    int envc;
    int retries;
    double retry_delay, timeout, kill_grace;
    long memory_mb[64]; /* issue 26 `memory: [4G, 8G]`: one per attempt, the last for any after */
    int n_memory;
};

/* Every secret value, however many, indexed so that a byte of output costs about
 * one table lookup whatever their count:
 *   - values of 4+ bytes in buckets by a hash of their first 4 bytes ("lng");
 *   - values of 2-3 bytes in buckets by a hash of their first 2 bytes ("shrt");
 *   - 1-byte values in a 256-entry table;
 * buckets are CSR arrays (bucket k holds order[start[k]..start[k+1])), longest
 * first; `pairs` is a bitmap of the first 2 bytes of every 2+ byte value, to pass
 * over most bytes without touching the buckets. Near the end of a buffer (fewer
 * than 4 bytes left) all values are tried, longest first. */
#define BUCKETS 4096 /* a power of 2; small enough to build for every task (16 KB) */
#define BUCKET_BITS 12
struct secret_index {
    uint32_t *start; /* BUCKETS + 1 entries */
    int *order;
};

struct secrets {
    char **value;
    size_t *len;
    int count;
    size_t max_len;
    int *by_length; /* every value, longest first */
    struct secret_index lng, shrt;
    unsigned char pairs[65536 / 8];
    int single[256]; /* index of the 1-byte secret equal to this byte, or -1 */
};

/* logs/<task>.log and its companion .times file */
/* The log's companion file of times is created only once it tells something the result does not: the
 * log got output, or a second attempt began (or it was there already). Until then its entries are
 * held here; a task that ran once and printed nothing leaves none (its one attempt is the result's
 * started_at/ended_at/exit_code: site/logs.py reads it from there). A file less for such a task, and
 * on some disks creating one costs ~100x writing one (issue 22). */
enum { TIMES_HELD, TIMES_OPEN, TIMES_NONE };

struct task_log {
    int fd, times_fd, times_state;
    int lost_errno; /* a write to the log failed (e.g. a full disk): the task fails, said in its result */
    unsigned long long size;
    int at_line_start;
    double last_entry; /* monotonic seconds */
    char times_path[4200];
    char held[512];
    size_t held_len;
};

struct outcome {
    int stopped;    /* the launcher was told to stop: the task was ended, no retry */
    int exit_code;  /* shell convention: 128+signal for a signal death */
    int signal;     /* 0 = exited normally */
    int timed_out;
    long peak_rss_kb;
    int reaped;     /* 0: the task's exit was never seen (exit_code means nothing) */
};

static int wake_pipe[2] = {-1, -1};
/* SIGTERM/SIGINT/SIGHUP to the launcher (make passes a stop on to its jobs;
 * Ctrl-C reaches make and us but not the task, which has its own process group) */
static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int sig) {
    int saved = errno;
    stop_signal = sig;
    ssize_t ignored = write(wake_pipe[1], "x", 1);
    (void)ignored;
    errno = saved;
}

static void on_sigchld(int sig) {
    (void)sig;
    int saved = errno;
    ssize_t ignored = write(wake_pipe[1], "x", 1);
    (void)ignored;
    errno = saved;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ISO 8601 UTC with milliseconds, like records.now_iso(). */
static void iso_now(char *out, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03ld+00:00", ts.tv_nsec / 1000000);
}

static void sleep_s(double seconds) {
    if (seconds <= 0) return;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop_signal) {
    }
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("flank-task: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static long long unix_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Create the times file (once) and write what was held for it; without it, no timestamps: the log
 * itself matters more. */
static void times_open(struct task_log *log) {
    if (log->times_state != TIMES_HELD) return;
    log->times_fd = open(log->times_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    log->times_state = log->times_fd < 0 ? TIMES_NONE : TIMES_OPEN;
    if (log->times_state == TIMES_OPEN && log->held_len) write_all(log->times_fd, log->held, log->held_len);
    log->held_len = 0;
}

static void times_entry(struct task_log *log, const char *fmt, ...) {
    log->last_entry = mono_now();
    if (log->times_state == TIMES_NONE) return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof line) return;
    if (log->times_state == TIMES_HELD && log->held_len + (size_t)n <= sizeof log->held) {
        memcpy(log->held + log->held_len, line, (size_t)n);
        log->held_len += (size_t)n;
        return;
    }
    times_open(log);
    if (log->times_state == TIMES_OPEN) write_all(log->times_fd, line, (size_t)n);
}

/* Everything that goes into the log goes through here: it keeps the offset and
 * notes when a line began, at most every TIMES_INTERVAL_MS. */
static void log_write(struct task_log *log, const char *buf, size_t len) {
    if (len == 0) return;
    times_open(log);
    if (write_all(log->fd, buf, len) < 0 && !log->lost_errno) log->lost_errno = errno ? errno : EIO;
    if ((mono_now() - log->last_entry) * 1000 >= TIMES_INTERVAL_MS) {
        long long line = -1;
        if (log->at_line_start) {
            line = (long long)log->size;
        } else {
            const char *nl = memchr(buf, '\n', len);
            if (nl && (size_t)(nl - buf) + 1 < len) line = (long long)log->size + (nl - buf) + 1;
        }
        if (line >= 0) times_entry(log, "%lld %lld\n", line, unix_ms());
    }
    log->size += len;
    log->at_line_start = buf[len - 1] == '\n';
}

static void log_line(struct task_log *log, const char *fmt, ...) {
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    log_write(log, line, (size_t)n);
}

static void open_task_log(struct task_log *log, const char *path) {
    memset(log, 0, sizeof *log);
    log->last_entry = -1e9;
    log->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log->fd < 0) return;
    struct stat st;
    log->size = fstat(log->fd, &st) == 0 ? (unsigned long long)st.st_size : 0;
    char last = '\n';
    if (log->size > 0 && pread(log->fd, &last, 1, (off_t)log->size - 1) != 1) last = '\n';
    log->at_line_start = last == '\n';
    log->times_fd = -1;
    log->times_state = TIMES_HELD;
    snprintf(log->times_path, sizeof log->times_path, "%s.times", path);
    if (log->size > 0) {
        times_open(log); /* a log with output already (a task started again): its times go on */
    } else {
        log->times_fd = open(log->times_path, O_WRONLY | O_APPEND | O_CLOEXEC); /* or were there */
        if (log->times_fd >= 0) log->times_state = TIMES_OPEN;
    }
}

/* ---- the spec file ------------------------------------------------------ */

static void read_exactly(int fd, char *buf, size_t len, off_t at, const char *path) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, at + (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("cannot read the task spec %s", path);
        got += (size_t)n;
    }
}

/* Entry `name` of the specs file `file` (task_exec.py's encode_specs_file says the format): the
 * header and index (and mostly the entry) in one read, then the entry. *len_out: its length. */
#define SPECS_MAGIC "flank-specs"
#define SPECS_FIRST_READ 16384
static char *read_specs_entry(const char *file, const char *name, size_t *len_out) {
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("cannot read the task spec %s/%s: %s", file, name, strerror(errno));
    size_t size = SPECS_FIRST_READ;
    char *head = malloc(size + 1);
    if (!head) die("out of memory");
    ssize_t n;
    while ((n = pread(fd, head, size, 0)) < 0 && errno == EINTR) {
    }
    if (n < 0) die("cannot read the task spec %s/%s: %s", file, name, strerror(errno));
    size_t got = (size_t)n;
    head[got] = '\0';
    size_t magic = sizeof SPECS_MAGIC; /* with its NUL */
    if (got < magic + 4 || memcmp(head, SPECS_MAGIC, magic)) die("%s is not a flank specs file", file);
    char *version = head + magic;
    char *index_len_text = version + strnlen(version, got - magic) + 1;
    if (strcmp(version, "1") || index_len_text >= head + got)
        die("%s is not a specs file this flank reads (regenerate it with a push)", file);
    char *end = NULL;
    unsigned long long index_len = strtoull(index_len_text, &end, 10);
    if (end == index_len_text || *end != '\0') die("%s is truncated (regenerate it with a push)", file);
    size_t index_start = (size_t)(end + 1 - head);
    size_t contents = index_start + (size_t)index_len;
    if (contents > got) { /* a very large index: read the rest of it */
        head = realloc(head, contents + 1);
        if (!head) die("out of memory");
        read_exactly(fd, head + got, contents - got, (off_t)got, file);
        got = contents;
        head[got] = '\0';
    }
    char *p = head + index_start, *index_end = head + contents;
    while (p < index_end) {
        char *entry = p;
        char *offset_text = entry + strnlen(entry, (size_t)(index_end - entry)) + 1;
        if (offset_text >= index_end) break;
        char *length_text = offset_text + strnlen(offset_text, (size_t)(index_end - offset_text)) + 1;
        if (length_text >= index_end) break;
        p = length_text + strnlen(length_text, (size_t)(index_end - length_text)) + 1;
        if (strcmp(entry, name)) continue;
        size_t start = contents + (size_t)strtoull(offset_text, NULL, 10);
        size_t len = (size_t)strtoull(length_text, NULL, 10);
        char *buf = malloc(len + 1);
        if (!buf) die("out of memory");
        if (start + len <= got) memcpy(buf, head + start, len);
        else read_exactly(fd, buf, len, (off_t)start, file);
        buf[len] = '\0';
        free(head);
        close(fd);
        *len_out = len;
        return buf;
    }
    die("%s has no entry %s (regenerate it with a push)", file, name);
    return NULL;
}

/* The spec as stored: the file `path`, or, when `path` is `<specs file>/<name>`, that entry. */
static char *load_spec(const char *path, size_t *len_out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOTDIR) {
        const char *slash = strrchr(path, '/');
        char file[4096];
        if (!slash || (size_t)(slash - path) >= sizeof file) die("cannot read the task spec %s", path);
        memcpy(file, path, (size_t)(slash - path));
        file[slash - path] = '\0';
        return read_specs_entry(file, slash + 1, len_out);
    }
    if (fd < 0) die("cannot read the task spec %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) die("cannot read the task spec %s: %s", path, strerror(errno));
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) die("out of memory");
    read_exactly(fd, buf, (size_t)st.st_size, 0, path);
    close(fd);
    buf[st.st_size] = '\0';
    *len_out = (size_t)st.st_size;
    return buf;
}

static void read_spec(const char *path, struct spec *spec) {
    size_t got = 0;
    char *buf = load_spec(path, &got);
    if (got == 0 || buf[got - 1] != '\0') die("%s is not a flank task spec (regenerate it with a push)", path);

    memset(spec, 0, sizeof *spec);
    spec->kill_grace = 5;
    char *p = buf, *end = buf + got;
    while (p < end) {
        char *key = p;
        p += strlen(p) + 1;
        if (p >= end) die("%s is truncated (regenerate it with a push)", path);
        char *value = p;
        p += strlen(p) + 1;
        if (!strcmp(key, "task")) spec->task = value;
        else if (!strcmp(key, "command")) spec->command = value;
        else if (!strcmp(key, "cwd")) spec->cwd = value;
        else if (!strcmp(key, "retries")) spec->retries = atoi(value);
        else if (!strcmp(key, "retry_delay_s")) spec->retry_delay = strtod(value, NULL);
        else if (!strcmp(key, "timeout_s")) spec->timeout = strtod(value, NULL);
        else if (!strcmp(key, "kill_grace_s")) spec->kill_grace = strtod(value, NULL);
        else if (!strcmp(key, "argv") && spec->argc < MAX_ITEMS) spec->argv[spec->argc++] = value;
        else if (!strcmp(key, "env") && spec->envc < MAX_ITEMS) spec->env[spec->envc++] = value;
        else if (!strcmp(key, "memory_attempt_mb") && spec->n_memory < 64) spec->memory_mb[spec->n_memory++] = atol(value);
        /* unknown keys: written by a newer flank; ignore */
    }
    spec->argv[spec->argc] = NULL;
    if (!spec->task || !spec->command) die("%s lacks a task name or command", path);
    for (const char *c = spec->task; *c; c++)
        if (*c == '/' || *c == '"' || *c == '\\') die("%s: bad task name", path);
}

/* ---- environment ----------------------------------------------------------- */

static void prepare_environment(const struct spec *spec) {
    /* make's own variables would leak make -k/-j and our command line into any
     * make the task runs itself. */
    static const char *drop[] = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                                 "MAKE_TERMOUT", "MAKE_TERMERR", NULL};
    for (int i = 0; drop[i]; i++) unsetenv(drop[i]);
    setenv("FLANK_TASK", spec->task, 1);
    for (int i = 0; i < spec->envc; i++) {
        const char *eq = strchr(spec->env[i], '=');
        if (!eq || eq == spec->env[i]) continue;
        char name[1024];
        size_t n = (size_t)(eq - spec->env[i]);
        if (n >= sizeof name) continue;
        memcpy(name, spec->env[i], n);
        name[n] = '\0';
        setenv(name, eq + 1, 1);
    }
}

static unsigned pair_of(const char *p) { return ((unsigned)(unsigned char)p[0] << 8) | (unsigned char)p[1]; }

static unsigned hash4(const char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return (v * 2654435761u) >> (32 - BUCKET_BITS);
}

static unsigned hash2(const char *p) { return (pair_of(p) * 2654435761u) >> (32 - BUCKET_BITS); }

static const struct secrets *sort_secrets;
static unsigned (*sort_key)(const char *);
static int by_key_then_longest(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    const struct secrets *s = sort_secrets;
    if (sort_key) {
        unsigned ki = sort_key(s->value[i]), kj = sort_key(s->value[j]);
        if (ki != kj) return ki < kj ? -1 : 1;
    }
    if (s->len[i] != s->len[j]) return s->len[i] > s->len[j] ? -1 : 1;
    return i - j;
}

static void build_index(struct secrets *s, struct secret_index *index, size_t min_len, size_t max_len,
                        unsigned (*key)(const char *)) {
    index->start = calloc(BUCKETS + 1, sizeof *index->start);
    index->order = calloc((size_t)s->count + 1, sizeof *index->order);
    if (!index->start || !index->order) die("out of memory");
    int n = 0;
    for (int i = 0; i < s->count; i++) {
        if (s->len[i] < min_len || s->len[i] > max_len) continue;
        index->order[n++] = i;
        index->start[key(s->value[i]) + 1]++;
    }
    for (int k = 0; k < BUCKETS; k++) index->start[k + 1] += index->start[k];
    sort_secrets = s;
    sort_key = key;
    qsort(index->order, (size_t)n, sizeof *index->order, by_key_then_longest);
}

static void load_secrets(struct secrets *s) {
    memset(s, 0, sizeof *s);
    for (int b = 0; b < 256; b++) s->single[b] = -1;
    const char *names = getenv("FLANK_SECRET_NAMES");
    if (!names) names = "";
    size_t room = 1;
    for (const char *c = names; *c; c++) room += *c == ',';
    s->value = calloc(room, sizeof *s->value);
    s->len = calloc(room, sizeof *s->len);
    s->by_length = calloc(room, sizeof *s->by_length);
    char *copy = strdup(names), *save = NULL;
    if (!s->value || !s->len || !s->by_length || !copy) die("out of memory");
    for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        const char *value = getenv(name);
        if (!value || !*value) continue; /* every non-empty value is masked, whatever its length */
        s->value[s->count] = strdup(value); /* the task's env may replace the variable */
        if (!s->value[s->count]) die("out of memory");
        s->len[s->count] = strlen(value);
        if (s->len[s->count] > s->max_len) s->max_len = s->len[s->count];
        s->by_length[s->count] = s->count;
        s->count++;
    }
    free(copy);
    if (s->count == 0) return;
    for (int i = 0; i < s->count; i++) {
        if (s->len[i] == 1) s->single[(unsigned char)s->value[i][0]] = i;
        else s->pairs[pair_of(s->value[i]) >> 3] |= (unsigned char)(1u << (pair_of(s->value[i]) & 7));
    }
    sort_secrets = s;
    sort_key = NULL;
    qsort(s->by_length, (size_t)s->count, sizeof *s->by_length, by_key_then_longest);
    build_index(s, &s->lng, 4, (size_t)-1, hash4);
    build_index(s, &s->shrt, 2, 3, hash2);
}

/* ---- masking ----------------------------------------------------------------
 * The length of the secret that starts at p (the longest), 0 for none, or -1
 * when more bytes are needed to decide (a longer secret may start here). */
static long secret_at(const struct secrets *s, const char *p, size_t avail, int final) {
    if (avail < 4) {
        for (int j = 0; j < s->count; j++) {
            int i = s->by_length[j];
            size_t len = s->len[i];
            if (len > avail) {
                if (!final && !memcmp(p, s->value[i], avail)) return -1;
            } else if (!memcmp(p, s->value[i], len)) {
                return (long)len;
            }
        }
        return 0;
    }
    unsigned pair = pair_of(p);
    if (s->pairs[pair >> 3] & (1u << (pair & 7))) {
        unsigned k = hash4(p);
        for (uint32_t j = s->lng.start[k]; j < s->lng.start[k + 1]; j++) {
            int i = s->lng.order[j];
            size_t len = s->len[i];
            if (len > avail) {
                if (!final && !memcmp(p, s->value[i], avail)) return -1;
            } else if (!memcmp(p, s->value[i], len)) {
                return (long)len;
            }
        }
        unsigned k2 = hash2(p);
        for (uint32_t j = s->shrt.start[k2]; j < s->shrt.start[k2 + 1]; j++) {
            int i = s->shrt.order[j];
            if (!memcmp(p, s->value[i], s->len[i])) return (long)s->len[i];
        }
    }
    return s->single[(unsigned char)p[0]] >= 0 ? 1 : 0;
}

/* buf[0..*len) is carried-over bytes + new bytes. Writes the masked output to the
 * log and keeps at the front of buf the tail that might be the start of a secret
 * (unless final). */
static void mask_and_write(const struct secrets *s, char *buf, size_t *len, int final, struct task_log *log) {
    static char out[CHUNK];
    size_t n = *len, i = 0, o = 0, run = 0; /* buf[run..i): bytes to copy as they are */
    if (s->count == 0) {
        log_write(log, buf, n);
        *len = 0;
        return;
    }
    for (;;) {
        long m = i < n ? secret_at(s, buf + i, n - i, final) : -1;
        if (m == 0) {
            i++;
            continue;
        }
        /* a secret at i, or the end (or a possible start of one): flush the plain run */
        while (run < i) {
            size_t part = i - run < sizeof out - o ? i - run : sizeof out - o;
            memcpy(out + o, buf + run, part);
            o += part;
            run += part;
            if (o == sizeof out) {
                log_write(log, out, o);
                o = 0;
            }
        }
        if (m < 0) break;
        if (o + 3 > sizeof out) {
            log_write(log, out, o);
            o = 0;
        }
        memcpy(out + o, "***", 3);
        o += 3;
        i += (size_t)m;
        run = i;
    }
    log_write(log, out, o);
    memmove(buf, buf + i, n - i);
    *len = n - i;
}

/* ---- processes ------------------------------------------------------------- */

/* We are a child subreaper: orphaned grandchildren come to us. Only called once
 * the task's own process is reaped (it must be reaped by wait4 for its rusage). */
static void reap_orphans(void) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static double min_d(double a, double b) { return a < b ? a : b; }

static int group_alive(pid_t pgid) {
    return !(kill(-pgid, 0) < 0 && errno == ESRCH);
}

static void drain_wake_pipe(void) {
    char junk[256];
    while (read(wake_pipe[0], junk, sizeof junk) > 0) {
    }
}

/* In the vfork child: it shares the launcher's memory until it execs, so it touches no
 * global and runs none of the launcher's handlers (they would write its stop_signal): every
 * signal is blocked across vfork, set back to default here, and only then unblocked. */
static void exec_task(const struct spec *spec, int out_fd, const sigset_t *mask) {
    static const int reset[] = {SIGCHLD, SIGPIPE, SIGTERM, SIGINT, SIGHUP};
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof reset / sizeof *reset; i++) sigaction(reset[i], &dfl, NULL);
    sigprocmask(SIG_SETMASK, mask, NULL);
    setpgid(0, 0);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    if (spec->cwd && *spec->cwd && chdir(spec->cwd) < 0) {
        dprintf(2, "flank: cannot enter the task's directory %s: %s\n", spec->cwd, strerror(errno));
        _exit(1);
    }
    if (spec->argc > 0) {
        execvp(spec->argv[0], (char *const *)spec->argv);
        if (errno == ENOENT || errno == ENOTDIR) _exit(127);
        if (errno == EACCES || errno == EPERM) _exit(126);
        dprintf(2, "flank: cannot run %s: %s\n", spec->argv[0], strerror(errno));
        _exit(126);
    }
    execl("/bin/sh", "sh", "-c", spec->command, (char *)NULL);
    dprintf(2, "flank: cannot start /bin/sh: %s\n", strerror(errno));
    _exit(127);
}

static void run_attempt(const struct spec *spec, struct task_log *log, const struct secrets *secrets,
                        struct outcome *result) {
    /* always through a pipe: masking, and the times of lines, need to see the output */
    int out_pipe[2] = {-1, -1};
    if (pipe2(out_pipe, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));

    /* vfork, not fork: the launcher waits while the task starts instead of racing it for a
     * CPU; ~0.9 ms less per task on a busy 2-core machine (bench/overhead.py, issue 22) */
    sigset_t all, mask;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &mask);
    pid_t pid = vfork();
    if (pid == 0) exec_task(spec, out_pipe[1], &mask);
    int fork_errno = errno;
    sigprocmask(SIG_SETMASK, &mask, NULL);
    if (pid < 0) die("fork: %s", strerror(fork_errno));
    /* the child is in its own process group already: vfork returns once it has exec'd (or died) */
    close(out_pipe[1]);

    memset(result, 0, sizeof *result);
    if (stop_signal) result->stopped = 1;
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    double deadline = spec->timeout > 0 ? mono_now() + spec->timeout : 0;
    double kill_at = 0, give_up_at = 0;
    int reaped = 0, pipe_open = 1, term_sent = 0, kill_sent = 0, group_gone = 0;
    /* room for one read plus the carried-over start of a secret */
    char *buf = malloc(CHUNK + secrets->max_len);
    if (!buf) die("out of memory");
    size_t buf_len = 0;

    for (;;) {
        if (!reaped && wait4(pid, &status, WNOHANG, &ru) == pid) reaped = 1;
        double now = mono_now();
        if (!reaped && deadline && now >= deadline && !result->timed_out) {
            result->timed_out = 1;
            log_line(log, "\nflank: timed out after %gs; stopping the task and everything it started\n",
                     spec->timeout);
        }
        if (!reaped && stop_signal && !result->stopped) {
            result->stopped = 1;
            log_line(log, "\nflank: stopped (signal %d); stopping the task and everything it started\n",
                     (int)stop_signal);
        }
        /* once the task is over (or out of time), end the rest of its process group:
         * children, grandchildren, background jobs */
        if ((reaped || result->timed_out || result->stopped) && !term_sent) {
            term_sent = 1;
            if (kill(-pid, SIGTERM) < 0 && errno == ESRCH) group_gone = 1;
            kill_at = now + spec->kill_grace;
        }
        if (reaped) reap_orphans();
        if (term_sent && !group_gone && !group_alive(pid)) group_gone = 1;
        if (term_sent && !group_gone && !kill_sent && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_sent = 1;
        }
        if (reaped && !give_up_at && (group_gone || kill_sent))
            give_up_at = now + 2; /* a process outside the group may hold the pipe or ignore SIGKILL */
        if (reaped && group_gone && !pipe_open) break;
        if (reaped && give_up_at && now >= give_up_at) break;

        /* wait for output, a child's exit, or the next deadline */
        double wait_s = 1e9;
        if (!term_sent && deadline) wait_s = deadline - now;
        if (term_sent && !group_gone) wait_s = min_d(wait_s, 0.02); /* poll until the group is empty */
        if (give_up_at) wait_s = min_d(wait_s, give_up_at - now);
        int timeout_ms = wait_s >= 1e8 ? -1 : (wait_s <= 0 ? 0 : (int)(wait_s * 1000) + 1);
        struct pollfd fds[2] = {{wake_pipe[0], POLLIN, 0}, {pipe_open ? out_pipe[0] : -1, POLLIN, 0}};
        int r = poll(fds, 2, timeout_ms);
        if (r < 0 && errno != EINTR) die("poll: %s", strerror(errno));
        if (r > 0 && (fds[0].revents & POLLIN)) drain_wake_pipe();
        if (r > 0 && pipe_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(out_pipe[0], buf + buf_len, CHUNK);
            if (n > 0) {
                buf_len += (size_t)n;
                mask_and_write(secrets, buf, &buf_len, 0, log);
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                pipe_open = 0;
            }
        }
    }
    mask_and_write(secrets, buf, &buf_len, 1, log);
    close(out_pipe[0]);
    free(buf);
    reap_orphans();
    result->reaped = reaped;

    result->peak_rss_kb = ru.ru_maxrss;
    if (WIFEXITED(status)) {
        result->exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result->signal = WTERMSIG(status);
        result->exit_code = 128 + result->signal;
    }
}

/* ---- the task result --------------------------------------------------------- */

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* tasks/<task>.json, whole, in place: opened with O_TRUNC (emptied first), then one write. A reader
 * finds no file, the last record whole, an empty file, a prefix of the new one (a JSON object cut
 * short never parses: read as caught mid-write, as records.read_task_result says) or the new one
 * whole; never the start of one record and the rest of another, which could parse. No temp file and
 * no rename: on some disks creating a file costs ~100x writing one, and a task's result is written
 * at least twice (issue 22). */
static void write_result(const char *run_dir, const struct spec *spec, const char *body) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tasks/%s.json", run_dir, spec->task);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) die("cannot write %s: %s", path, strerror(errno));
    int failed = write_all(fd, body, strlen(body)) < 0;
    if (close(fd) < 0) failed = 1;
    if (failed) die("cannot write %s: %s", path, strerror(errno));
}

static long memory_for_attempt(const struct spec *spec, int attempt) {
    if (!spec->n_memory) return 0;
    return spec->memory_mb[(attempt < spec->n_memory ? attempt : spec->n_memory) - 1];
}

/* "running" (or "queued" with its reason: waiting for memory) at the start of an attempt */
static char *format_running(const struct spec *spec, int attempt, const char *started_at, const char *queued_reason) {
    char *body = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&body, &size);
    const char *status = queued_reason ? "queued" : "running";
    fputs("{\"task\": ", f);
    json_string(f, spec->task);
    fprintf(f, ", \"status\": \"%s\", \"attempt\": %d, \"started_at\": \"%s\", \"pid\": %d", status, attempt,
            started_at, (int)getpid());
    if (spec->n_memory) fprintf(f, ", \"memory_mb\": %ld", memory_for_attempt(spec, attempt));
    if (queued_reason) {
        fputs(", \"queued_reason\": ", f);
        json_string(f, queued_reason);
    }
    fputs("}\n", f);
    fclose(f);
    return body;
}

static char *format_final(const struct spec *spec, const char *status, int attempts, const struct outcome *o,
                          const char *started_at, const char *ended_at, double duration, long peak_rss_kb,
                          const char *error) {
    char *body = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&body, &size);
    fputs("{\"task\": ", f);
    json_string(f, spec->task);
    fprintf(f, ", \"status\": \"%s\", \"attempts\": %d, \"exit_code\": %d", status, attempts, o->exit_code);
    if (o->signal) fprintf(f, ", \"signal\": %d", o->signal);
    fprintf(f, ", \"started_at\": \"%s\", \"ended_at\": \"%s\", \"duration_s\": %.3f, \"peak_rss_kb\": %ld",
            started_at, ended_at, duration, peak_rss_kb);
    if (spec->n_memory) fprintf(f, ", \"memory_mb\": %ld", memory_for_attempt(spec, attempts));
    /* CPU time of every process the launcher waited for (the task, its reaped leftovers), all attempts */
    struct rusage children;
    if (getrusage(RUSAGE_CHILDREN, &children) == 0)
        fprintf(f, ", \"cpu_s\": %.3f",
                children.ru_utime.tv_sec + children.ru_utime.tv_usec / 1e6 +
                children.ru_stime.tv_sec + children.ru_stime.tv_usec / 1e6);
    fputs(", \"log\": ", f);
    char log_rel[1100];
    snprintf(log_rel, sizeof log_rel, "logs/%s.log", spec->task);
    json_string(f, log_rel);
    if (error) {
        fputs(", \"error\": ", f);
        json_string(f, error);
    }
    fputs("}\n", f);
    fclose(f);
    return body;
}

static void mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST) die("cannot create %s: %s", path, strerror(errno));
}

/* ---- memory per attempt (issue 26; task/memory_hold.py is the twin and says why) ---- */

static const char *reservations_dir = NULL; /* FLANK_MEMORY_RESERVATIONS, from executors/resources.py */
static long vm_mb = 0;                      /* FLANK_VM_MEMORY_MB */

static void size_text(char *out, size_t size, long mb) {
    if (mb >= 1024) {
        double gb = mb / 1024.0;
        if (gb >= 10 || gb == (double)(long)gb) snprintf(out, size, "%.0fG", gb);
        else snprintf(out, size, "%.1fG", gb);
    } else {
        snprintf(out, size, "%ldM", mb);
    }
}

/* Declared memory of the other tasks running now; stale reservations (their pid gone) are removed. */
static long reserved_by_others(void) {
    DIR *d = opendir(reservations_dir);
    if (!d) return 0;
    long total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid == (long)getpid()) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", reservations_dir, e->d_name);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        long mb = 0;
        int read_ok = fscanf(f, "%ld", &mb) == 1;
        fclose(f);
        if (!read_ok) continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) total += mb;
        else if (errno == ESRCH) unlink(path);
    }
    closedir(d);
    return total;
}

static void write_reservation(long mb, int only_if_there) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%d", reservations_dir, (int)getpid());
    if (only_if_there && access(path, F_OK) != 0) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    dprintf(fd, "%ld\n", mb);
    close(fd);
}

/* Hold this attempt's memory in place of the last one's; while the other tasks leave no room, hold
 * nothing (two retrying tasks never wait for each other), stay queued and say why, once. */
static void hold_memory(const struct spec *spec, int attempt, struct task_log *log, const char *run_dir,
                        const char *started_at) {
    long mb = memory_for_attempt(spec, attempt);
    char lock_path[4096];
    snprintf(lock_path, sizeof lock_path, "%s/.lock", reservations_dir);
    int said = 0;
    while (!stop_signal) {
        int fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return; /* the folder is gone: nothing to hold against */
        while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {}
        long held = reserved_by_others();
        int fits = !held || held + mb <= vm_mb;
        write_reservation(fits ? mb : 0, !fits);
        close(fd);
        if (fits) {
            if (said) {
                char *running = format_running(spec, attempt, started_at, NULL);
                write_result(run_dir, spec, running);
                free(running);
            }
            return;
        }
        if (!said) {
            said = 1;
            char need[32], others[32], all[32], reason[256];
            size_text(need, sizeof need, mb);
            size_text(others, sizeof others, held);
            size_text(all, sizeof all, vm_mb);
            snprintf(reason, sizeof reason,
                     "waiting for memory: attempt %d needs %s, tasks running on this VM declared %s of its %s", attempt,
                     need, others, all);
            log_line(log, "flank: %s\n", reason);
            char *queued = format_running(spec, attempt, started_at, reason);
            write_result(run_dir, spec, queued);
            free(queued);
        }
        sleep_s(0.5);
    }
}

static void end_entry(struct task_log *log, int attempt, const struct outcome *o, const char *status) {
    char code[16] = "-";
    if (o->reaped) snprintf(code, sizeof code, "%d", o->exit_code);
    times_entry(log, "end %d %llu %lld %s %s\n", attempt, log->size, unix_ms(), code, status);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SPEC_FILE RUN_DIR\n  (runs one task of a flank Makefile)\n", argv[0]);
        return 2;
    }
    struct spec spec;
    read_spec(argv[1], &spec);
    const char *run_dir = argv[2];

    char path[4096];
    snprintf(path, sizeof path, "%s/logs/%s.log", run_dir, spec.task);
    struct task_log log;
    open_task_log(&log, path);
    if (log.fd < 0 && errno == ENOENT) {
        /* first task of a run made by hand: create the folders (the runner makes them) */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tasks", run_dir);
        mkdir_p(dir);
        snprintf(dir, sizeof dir, "%s/logs", run_dir);
        mkdir_p(dir);
        open_task_log(&log, path);
    }
    if (log.fd < 0) die("cannot open the log %s: %s", path, strerror(errno));

    struct secrets secrets;
    load_secrets(&secrets);
    if (spec.n_memory > 1) { /* issue 26: where each next attempt's memory is held (memory_hold.py) */
        const char *dir = getenv("FLANK_MEMORY_RESERVATIONS"), *vm = getenv("FLANK_VM_MEMORY_MB");
        if (dir && *dir && vm && atol(vm) > 0) {
            reservations_dir = strdup(dir);
            vm_mb = atol(vm);
        }
    }
    unsetenv("FLANK_MEMORY_RESERVATIONS"); /* never the task's */
    unsetenv("FLANK_VM_MEMORY_MB");
    prepare_environment(&spec);

    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe: %s", strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = on_stop;
    sa.sa_flags = 0; /* interrupt wait4 and nanosleep */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
#ifdef PR_SET_CHILD_SUBREAPER
    prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif

    char started_at[64], ended_at[64];
    iso_now(started_at, sizeof started_at);
    double t0 = mono_now();
    int attempts_allowed = spec.retries + 1, attempt = 0;
    double delay = spec.retry_delay;
    long peak = 0;
    struct outcome o;
    memset(&o, 0, sizeof o);

    for (attempt = 1; attempt <= attempts_allowed; attempt++) {
        char *running = format_running(&spec, attempt, started_at, NULL);
        write_result(run_dir, &spec, running);
        free(running);
        if (attempt > 1) {
            times_open(&log); /* more than one attempt: the result alone cannot tell them apart */
            log_line(&log, "flank: attempt %d of %d after %gs\n", attempt, attempts_allowed, delay);
            sleep_s(delay);
            delay *= 2;
            if (reservations_dir && !stop_signal) hold_memory(&spec, attempt, &log, run_dir, started_at);
        }
        int ran = !stop_signal;
        if (ran) {
            times_entry(&log, "attempt %d %llu %lld\n", attempt, log.size, unix_ms());
            run_attempt(&spec, &log, &secrets, &o);
        }
        if (o.peak_rss_kb > peak) peak = o.peak_rss_kb;
        if (o.stopped || stop_signal) {
            /* leave the "running" record: the runner marks the task interrupted */
            if (ran) end_entry(&log, attempt, &o, "interrupted");
            close(log.fd);
            return 128 + (stop_signal ? (int)stop_signal : SIGTERM);
        }
        if (log.lost_errno) { /* its output is not all kept: failed, and no retry (the disk is likely full) */
            end_entry(&log, attempt, &o, "failed");
            break;
        }
        if (o.exit_code == 0 && !o.timed_out) {
            end_entry(&log, attempt, &o, "success");
            break;
        }
        if (!o.timed_out && o.exit_code == 127) {
            if (spec.argc > 0)
                log_line(&log, "flank: command not found: %s \xe2\x80\x94 is it installed on this VM (and on PATH)?\n",
                         spec.argv[0]);
            else
                log_line(&log, "flank: exit 127: a command was not found (the shell names it above) \xe2\x80\x94 "
                                 "is it installed on this VM (and on PATH)?\n");
        } else if (!o.timed_out && o.exit_code == 126) {
            log_line(&log, "flank: exit 126: %s is not executable \xe2\x80\x94 check its permissions "
                             "(chmod +x) or run it through its interpreter\n",
                     spec.argc > 0 ? spec.argv[0] : "a command");
        }
        end_entry(&log, attempt, &o, o.timed_out ? "timed_out" : "failed");
    }
    if (attempt > attempts_allowed) attempt = attempts_allowed;

    iso_now(ended_at, sizeof ended_at);
    const char *status = o.timed_out ? "timed_out" : (o.exit_code == 0 ? "success" : "failed");
    char error[300];
    if (log.lost_errno) {
        status = "failed";
        snprintf(error, sizeof error, "could not write its log: %s", strerror(log.lost_errno));
    }
    char *final = format_final(&spec, status, attempt, &o, started_at, ended_at, mono_now() - t0, peak,
                               log.lost_errno ? error : NULL);
    write_result(run_dir, &spec, final);
    free(final);
    close(log.fd);
    if (log.lost_errno && !o.timed_out && o.exit_code == 0) return 1;
    if (o.timed_out) return EXIT_TIMED_OUT;
    if (o.exit_code == 0) return 0;
    return o.exit_code > 0 && o.exit_code < 256 ? o.exit_code : 1;
}
