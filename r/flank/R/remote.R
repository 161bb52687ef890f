# Every ssh call of the package goes through here. It is the R twin of flank's own
# flank_ops/remote/ssh.py (what `flank remote` runs), word for word: the same remote URL
# (`git remote get-url --push flank`), the same ssh program (the one git uses for the push),
# the same command line for the VM's shell (the flank that `flank init` recorded in the bare
# repo, else `flank` on the PATH), every word quoted. Secrets travel on ssh's stdin only.

# The JSON answers this package reads (flank_ops/jsonout.py SCHEMA on the VM).
SCHEMA <- 1L
FLANK_COMMAND_KEY <- "flank.command"

flank_error <- function(message, hint = NULL, class = "flank_error") {
  text <- if (is.null(hint) || !nzchar(hint)) message else paste0(message, "\n  ", hint)
  stop(structure(class = c(class, "error", "condition"), list(message = text, call = NULL)))
}

# --- where the VM is ---------------------------------------------------------

git_out <- function(args, dir = ".") {
  out <- suppressWarnings(system2("git", c("-C", shQuote(dir), args), stdout = TRUE, stderr = TRUE))
  list(status = attr(out, "status") %||% 0L, out = out)
}

`%||%` <- function(a, b) if (is.null(a)) b else a

remote_url <- function(remote = "flank", dir = ".") {
  got <- git_out(c("remote", "get-url", "--push", shQuote(remote)), dir)
  if (got$status != 0) {
    if (any(grepl("not a git repository", got$out))) {
      flank_error("not in a git clone", "setwd() to your project's clone (or pass dir =)")
    }
    flank_error(
      sprintf("this clone has no git remote '%s'", remote),
      paste0(
        "add the VM as printed by `flank init NAME` on the VM, in the Terminal: ",
        "git remote add flank ssh://user@vm/home/user/flank/NAME.git"
      )
    )
  }
  trimws(got$out[1])
}

# ssh://user@vm[:port]/path/NAME.git or user@vm:path/NAME.git -> destination, port, git dir, FLANK_HOME, project
parse_remote_url <- function(url) {
  url <- trimws(url)
  scp <- regmatches(url, regexec("^([^/:@]+@[^/:]+|[^/:]+):(.+)$", url))[[1]]
  if (grepl("^(ssh|git\\+ssh|ssh\\+git)://", url)) {
    m <- regmatches(url, regexec("^[a-z+]+://(([^@/]*)@)?(\\[[^]]+\\]|[^:/]+)(:([0-9]*))?(/.*)?$", url))[[1]]
    if (length(m) == 0 || !nzchar(m[4])) flank_error(sprintf("no host in the remote URL '%s'", url), "use ssh://user@vm/path/NAME.git")
    host <- m[4]
    destination <- if (nzchar(m[3])) paste0(utils::URLdecode(m[3]), "@", host) else host
    port <- if (nzchar(m[6])) as.integer(m[6]) else NA_integer_
    path <- utils::URLdecode(m[7])
    if (startsWith(path, "/~")) {
      path <- sub("^/+", "", substring(path, 3))
      if (!nzchar(path)) path <- "."
    }
  } else if (length(scp) == 3 && !grepl("://", url, fixed = TRUE) && !startsWith(url, "-") && !startsWith(scp[3], "//")) {
    destination <- scp[2]
    port <- NA_integer_
    path <- scp[3]
    if (startsWith(path, "~/")) path <- substring(path, 3)
  } else {
    flank_error(
      sprintf("the remote URL '%s' is not an ssh URL", url),
      "flank works with ssh remotes: ssh://user@vm/home/user/flank/NAME.git or user@vm:flank/NAME.git"
    )
  }
  path <- sub("/+$", "", path)
  if (!nzchar(path)) path <- "/"
  name <- basename(path)
  if (!grepl("\\.git$", name) || name == ".git") {
    flank_error(
      sprintf("the remote URL '%s' does not end in NAME.git", url),
      "point the remote at the project's bare repo, as `flank init NAME` printed it"
    )
  }
  home <- dirname(path)
  list(destination = destination, port = port, git_dir = path, flank_home = home, project = sub("\\.git$", "", name))
}

# The ssh command git itself would use for a push from here (GIT_SSH_COMMAND, core.sshCommand, GIT_SSH, ssh).
ssh_program <- function(dir = ".") {
  command <- Sys.getenv("GIT_SSH_COMMAND")
  if (!nzchar(command)) {
    got <- git_out(c("config", "--get", "core.sshCommand"), dir)
    command <- if (got$status == 0 && length(got$out)) trimws(got$out[1]) else ""
  }
  if (nzchar(command)) return(shell_split(command))
  ssh <- Sys.getenv("GIT_SSH")
  if (nzchar(ssh)) ssh else "ssh"
}

# POSIX shell words of a command (as Python's shlex.split): quotes and backslashes.
shell_split <- function(text) {
  chars <- strsplit(text, "")[[1]]
  words <- character()
  word <- NULL
  i <- 1L
  n <- length(chars)
  while (i <= n) {
    ch <- chars[i]
    if (ch %in% c(" ", "\t", "\n")) {
      if (!is.null(word)) words <- c(words, word)
      word <- NULL
    } else if (ch == "'") {
      end <- i + 1L
      while (end <= n && chars[end] != "'") end <- end + 1L
      word <- paste0(word %||% "", paste(chars[seq_len(end - i - 1L) + i], collapse = ""))
      i <- end
    } else if (ch == "\"") {
      j <- i + 1L
      part <- ""
      while (j <= n && chars[j] != "\"") {
        if (chars[j] == "\\" && j < n && chars[j + 1L] %in% c("\"", "\\", "$", "`")) j <- j + 1L
        part <- paste0(part, chars[j])
        j <- j + 1L
      }
      word <- paste0(word %||% "", part)
      i <- j
    } else if (ch == "\\" && i < n) {
      i <- i + 1L
      word <- paste0(word %||% "", chars[i])
    } else {
      word <- paste0(word %||% "", ch)
    }
    i <- i + 1L
  }
  if (!is.null(word)) words <- c(words, word)
  words
}

# One word for a POSIX shell, exactly as Python's shlex.quote writes it.
sh_quote <- function(word) {
  vapply(word, function(w) {
    if (!nzchar(w)) return("''")
    if (!grepl("[^A-Za-z0-9_@%+=:,./-]", w)) return(w)
    paste0("'", gsub("'", "'\"'\"'", w, fixed = TRUE), "'")
  }, "", USE.NAMES = FALSE)
}

# The line for the VM's shell: FLANK_HOME set, FLANK_REMOTE and FLANK_SSH_ADDRESS set (so the hints the
# VM prints are commands that work on the laptop), the recorded flank (else `flank`) run with the args.
# It must stay word for word what `flank remote` sends (remote/ssh.py remote_shell_command): tested.
remote_shell_command <- function(target, flank_args) {
  words <- paste(sh_quote(flank_args), collapse = " ")
  paste0(
    "FLANK_HOME=", sh_quote(target$flank_home), "; FLANK_REMOTE=", sh_quote(target$remote %||% "flank"),
    "; FLANK_SSH_ADDRESS=", sh_quote(host_port(target)), "; export FLANK_HOME FLANK_REMOTE FLANK_SSH_ADDRESS; ",
    "c=$(git --git-dir=", sh_quote(target$git_dir), " config --get ", FLANK_COMMAND_KEY, " 2>/dev/null); ",
    "[ -n \"$c\" ] || c=flank; eval \"exec $c\" ", sh_quote(words)
  )
}

# host[:port] of the remote URL as the user wrote it, an IPv6 address in brackets when a port follows: the
# twin of remote/ssh.py host_port.
host_port <- function(target) {
  host <- gsub("^\\[+|\\]+$", "", sub("^.*@", "", target$destination))
  if (is.na(target$port)) return(host)
  if (grepl(":", host, fixed = TRUE)) paste0("[", host, "]:", target$port) else paste0(host, ":", target$port)
}

ssh_argv <- function(target, flank_args, dir = ".", tty = FALSE) {
  argv <- ssh_program(dir)
  if (!is.na(target$port)) argv <- c(argv, "-p", as.character(target$port))
  c(argv, if (tty) "-t" else "-T", "--", target$destination, remote_shell_command(target, flank_args))
}

# The project this clone pushes to (its `flank` remote).
flank_target <- function(remote = "flank", dir = ".") {
  target <- parse_remote_url(remote_url(remote, dir))
  target$dir <- dir
  target$remote <- remote
  target
}

# --- running the VM's flank ----------------------------------------------------

command_line <- function(argv) paste(sh_quote(argv), collapse = " ")

ssh_failed <- function(target, stderr_lines) {
  said <- paste(stderr_lines[nzchar(stderr_lines)], collapse = "\n")
  probe <- c(ssh_program(target$dir), if (!is.na(target$port)) c("-p", target$port), "--", target$destination, "true")
  flank_error(
    sprintf("ssh to %s failed%s", target$destination, if (nzchar(said)) paste0(": ", said) else ""),
    paste0(
      "check the host key, your key (ssh-add -l) and that the VM answers, in the Terminal: ",
      command_line(probe)
    ),
    class = "flank_ssh_error"
  )
}

# Run `flank ARGS` on the VM and wait: list(status, stdout lines, stderr lines).
# `input`: text written to ssh's stdin (a secret's value), never on a command line.
run_remote <- function(target, flank_args, input = NULL) {
  argv <- ssh_argv(target, flank_args, target$dir)
  err <- tempfile("flank-ssh-")
  on.exit(unlink(err), add = TRUE)
  if (is.null(input)) {
    out <- suppressWarnings(system2(argv[1], sh_quote(argv[-1]), stdout = TRUE, stderr = err, stdin = "/dev/null"))
    status <- attr(out, "status") %||% 0L
  } else {
    outfile <- tempfile("flank-out-")
    on.exit(unlink(outfile), add = TRUE)
    con <- pipe(paste(command_line(argv), ">", sh_quote(outfile), "2>", sh_quote(err)), open = "wb")
    writeBin(charToRaw(enc2utf8(input)), con)
    status <- close(con) %||% 0L
    if (status > 255) status <- status %/% 256L  # pclose's wait status
    out <- if (file.exists(outfile)) readLines(outfile, warn = FALSE) else character()
  }
  errors <- if (file.exists(err)) readLines(err, warn = FALSE) else character()
  if (status == 255) ssh_failed(target, errors)
  if (status == 127) {
    flank_error(
      sprintf("flank was not found on %s", target$destination),
      sprintf("on the VM, run `flank init %s` once (it records where flank is)", target$project)
    )
  }
  list(status = status, stdout = out, stderr = errors)
}
