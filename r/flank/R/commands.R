# The verbs: each asks the VM's flank for a JSON answer and hands back an R value.

# NULL -> NA, for data frame columns
na <- function(value, type = NA) if (is.null(value)) type else value

run_row <- function(pipeline, run, url = NULL, partial = NULL) {
  data.frame(
    pipeline = pipeline,
    run_id = na(run$run_id, NA_integer_),
    status = na(run$status, NA_character_),
    started = parse_time(run$started_at, run$timezone),
    duration_s = as.numeric(na(run$duration_s, NA_real_)),
    partial = na(partial, NA),
    trigger = na(run$trigger, NA_character_),
    summary = na(run$summary, NA_character_),
    url = na(url, NA_character_),
    stringsAsFactors = FALSE
  )
}

# An ISO 8601 time of the VM's as a POSIXct shown in `tz`: the pipeline's `timezone:` (the run
# record's), as flank status and the site show it; UTC when there is none or R does not know it.
parse_time <- function(iso, tz = NULL) {
  zone <- if (is.character(tz) && length(tz) == 1L && tz %in% OlsonNames()) tz else "UTC"
  if (is.null(iso)) return(as.POSIXct(NA, tz = zone))
  time <- as.POSIXct(sub("(\\.[0-9]+)?([+-][0-9]{2}):([0-9]{2})$", "\\2\\3", iso), format = "%Y-%m-%dT%H:%M:%S%z", tz = "UTC")
  attr(time, "tzone") <- zone
  time
}

flank_status <- function(remote = "flank", dir = ".") {
  target <- flank_target(remote, dir)
  answer <- ask(target, c("status", target$project))
  rows <- list()
  for (project in answer$projects) {
    for (p in project$pipelines) {
      row <- run_row(p$pipeline, p$run, p$url, p$partial)
      row$next_run <- parse_time(p$next_run, p$run$timezone)
      rows[[length(rows) + 1L]] <- row
    }
  }
  out <- if (length(rows)) do.call(rbind, rows) else run_row(character(), NULL)[0, ]
  for (warning in unlist(answer$warnings)) message("flank: warning: ", warning)
  out
}

flank_runs <- function(pipeline, n = 20L, remote = "flank", dir = ".") {
  target <- flank_target(remote, dir)
  answer <- ask(target, c("status", target$project, "--runs", as.character(as.integer(n))))
  pipelines <- answer$projects[[1]]$pipelines
  names <- vapply(pipelines, function(p) p$pipeline, "")
  if (!pipeline %in% names) {
    # the VM's own did-you-mean
    ask(target, c("plan", target$project, pipeline))
  }
  found <- pipelines[[match(pipeline, names)]]
  rows <- lapply(found$runs, function(r) run_row(pipeline, r, partial = r$partial))
  if (!length(rows)) return(run_row(character(), NULL)[0, ])
  do.call(rbind, rows)
}

flank_plan <- function(pipeline, remote = "flank", dir = ".") {
  target <- flank_target(remote, dir)
  answer <- ask(target, c("plan", target$project, pipeline))
  data.frame(
    task = vapply(answer$tasks, function(t) t$task, ""),
    decision = vapply(answer$tasks, function(t) t$decision, ""),
    reason = vapply(answer$tasks, function(t) t$reason, ""),
    stringsAsFactors = FALSE
  )
}

tasks_frame <- function(run) {
  tasks <- run$tasks
  data.frame(
    task = names(tasks) %||% character(),
    status = vapply(tasks, function(t) t$status, ""),
    started = do.call(c, c(list(parse_time(NULL, run$timezone))[0], lapply(tasks, function(t) parse_time(t$started_at, run$timezone)))),
    duration_s = vapply(tasks, function(t) as.numeric(na(t$duration_s, NA_real_)), 0),
    exit_code = vapply(tasks, function(t) as.integer(na(t$exit_code, NA_integer_)), 0L),
    row.names = NULL,
    stringsAsFactors = FALSE
  )
}

# A run's record (run.json, as the VM's answers carry it) that prints as `flank logs` shows a run: a
# line for the run, one per task (flank_ops/commands/logs.py _task_table). It stays the record's
# list: run$status, run$tasks$model$status.
as_flank_run <- function(run) {
  if (is.null(run)) return(run)
  structure(run, class = c("flank_run", "list"))
}

format.flank_run <- function(x, ...) {
  dash <- " \u2014 "
  started <- if (is.null(x$started_at)) "" else {
    paste0(dash, "started ", format(parse_time(x$started_at, x$timezone), "%a %d %b %H:%M %Z"))
  }
  head <- sub(paste0("(", dash, ")+$"), "", paste0(x$pipeline, " #", x$run_id, " ", x$status, started, dash, x$summary %||% ""))
  tasks <- x$tasks %||% list()
  width <- max(c(4L, nchar(names(tasks))))
  rows <- vapply(names(tasks), function(name) {
    t <- tasks[[name]]
    at <- if (is.null(t$started_at)) "" else format(parse_time(t$started_at, x$timezone), "%H:%M:%S %Z")
    line <- paste0(
      "  ", formatC(name, width = -width), "  ", formatC(t$status %||% "", width = -15), " ",
      formatC(at, width = 12), " ", formatC(fmt_duration(t$duration_s), width = 7)
    )
    sub(" +$", "", line)
  }, "", USE.NAMES = FALSE)
  c(head, rows)
}

print.flank_run <- function(x, ...) {
  cat(format(x), sep = "\n")
  invisible(x)
}

# 0.4s, 42s, 14m32s, 2h05m, 1d03h: the twin of flank_ops/humanize.py duration ("" for none).
fmt_duration <- function(seconds) {
  if (is.null(seconds) || is.na(seconds)) return("")
  s <- max(as.numeric(seconds), 0)
  if (s < 10) return(sprintf("%.1fs", s))
  if (s < 60) return(sprintf("%.0fs", s))
  m <- as.integer(round(s)) %/% 60L
  sec <- as.integer(round(s)) %% 60L
  if (m < 60L) return(sprintf("%dm%02ds", m, sec))
  h <- m %/% 60L
  if (h < 24L) return(sprintf("%dh%02dm", h, m %% 60L))
  sprintf("%dd%02dh", h %/% 24L, h %% 24L)
}

flank_logs <- function(pipeline, task = NULL, run = NULL, follow = FALSE, remote = "flank", dir = ".") {
  target <- flank_target(remote, dir)
  names <- c(target$project, pipeline, if (!is.null(run)) as.character(run), task)
  meta <- ask(target, c("logs", names))
  if (follow) {
    return(invisible(follow_run(target, pipeline, meta$run$run_id, task)))
  }
  if (is.null(task)) {
    frame <- tasks_frame(meta$run)
    # where each log is, as this laptop can open it: its address on the status site (logs_are "urls")
    frame$log <- vapply(frame$task, function(t) na(meta$logs[[t]], NA_character_), "", USE.NAMES = FALSE)
    return(structure(frame, run = as_flank_run(meta$run)))
  }
  got <- run_remote(target, c("logs", names))
  if (got$status != 0) flank_error(paste(sub("^flank: ", "", got$stderr), collapse = "\n"))
  cat(got$stdout, sep = "\n")
  invisible(got$stdout)
}

flank_run <- function(pipeline, task = NULL, from = NULL, rerun = NULL, params = list(), follow = TRUE,
                      remote = "flank", dir = ".", resume = NULL) {
  chosen <- !c(is.null(task), is.null(from), is.null(rerun), is.null(resume))
  if (sum(chosen) > 1) flank_error("give one of task, from, rerun and resume", "e.g. flank_run(\"nightly\", task = \"model\")")
  target <- flank_target(remote, dir)
  options <- c(
    if (!is.null(task)) c("--task", task),
    if (!is.null(from)) c("--from", from),
    if (!is.null(rerun)) c("--rerun", as.character(rerun)),
    if (!is.null(resume)) c("--resume", as.character(resume)),
    param_options(params)
  )
  answer <- ask(target, c("run", target$project, pipeline, options, "--detach"))
  if (is.null(answer$run_id)) {
    message("flank: ", answer$message)
    return(invisible(NULL))
  }
  message(sprintf("flank: %s #%d started%s", pipeline, answer$run_id, if (!is.null(answer$url)) paste0(" - ", answer$url) else ""))
  if (!follow) return(invisible(answer))
  invisible(follow_run(target, pipeline, answer$run_id, NULL))
}

flank_cancel <- function(pipeline, run = NULL, remote = "flank", dir = ".") {
  target <- flank_target(remote, dir)
  # exit 3 with an answer: the run had ended by itself meanwhile (its record says how)
  answer <- ask(target, c("cancel", target$project, pipeline, if (!is.null(run)) as.character(run)), ok_status = c(0L, 3L))
  message(sprintf("flank: %s #%d %s", pipeline, answer$run_id, if (answer$stopping) "is stopping" else answer$run$status))
  invisible(as_flank_run(answer$run))
}

flank_secret_set <- function(name, value = NULL, remote = "flank", dir = ".") {
  target <- flank_target(remote, dir)
  if (is.null(value)) value <- ask_secret(sprintf("value of %s: ", name))
  if (!is.character(value) || length(value) != 1) flank_error("the value must be one string")
  got <- run_remote(target, c("secrets", "set", target$project, name), input = value)
  if (got$status != 0) {
    flank_error(paste(sub("^flank: ", "", got$stderr), collapse = "\n  "), class = "flank_vm_error")
  }
  message(paste(sub("^flank: ", "", got$stdout), collapse = "\n"))
  invisible(TRUE)
}

# A hidden prompt: askpass, else RStudio's, else the terminal with echo off.
ask_secret <- function(prompt) {
  if (requireNamespace("askpass", quietly = TRUE)) {
    value <- askpass::askpass(prompt)
  } else if (requireNamespace("rstudioapi", quietly = TRUE) && rstudioapi::isAvailable()) {
    value <- rstudioapi::askForPassword(prompt)
  } else if (interactive()) {
    system("stty -echo")
    on.exit(system("stty echo"))
    value <- readline(prompt)
    cat("\n")
  } else {
    flank_error("no value given, and no prompt to ask for one", "pass value = , or run interactively")
  }
  if (is.null(value)) flank_error("no value given")
  value
}

flank_push <- function(branch = "main", run = NULL, follow = TRUE, remote = "flank", dir = ".") {
  target <- flank_target(remote, dir)
  head <- git_out(c("rev-parse", "HEAD"), dir)$out[1]
  # no run: no -o at all (paste0("run=", NULL) is "run=", which git took for the remote)
  options <- if (length(run)) as.vector(rbind("-o", shQuote(paste0("run=", run)))) else character()
  out <- suppressWarnings(system2("git", c("-C", shQuote(dir), "push", options, shQuote(remote), shQuote(paste0("HEAD:", branch))),
    stdout = TRUE, stderr = TRUE
  ))
  cat(out, sep = "\n")
  if (!is.null(attr(out, "status")) && attr(out, "status") != 0) flank_error("the push was refused (the VM said why, above)")
  started <- sub(".*flank: started ([^ ]+).*", "\\1", grep("flank: started ", out, value = TRUE))
  if (!follow || !length(started)) return(invisible(NULL))
  results <- list()
  for (pipeline in started) {
    run_id <- run_of_push(target, pipeline, head)
    if (!is.null(run_id)) results[[pipeline]] <- follow_run(target, pipeline, run_id, NULL)
  }
  invisible(results)
}

# The run a push started: the pipeline's newest run of this commit with trigger push (it may take a moment).
run_of_push <- function(target, pipeline, sha, tries = 50L) {
  for (i in seq_len(tries)) {
    answer <- ask(target, c("status", target$project))
    for (p in answer$projects[[1]]$pipelines) {
      run <- p$run
      if (p$pipeline == pipeline && !is.null(run) && identical(run$commit$sha, sha) && identical(run$trigger, "push")) {
        return(run$run_id)
      }
    }
    Sys.sleep(0.2)
  }
  NULL
}

# params = list(model = "glm", n = 3, loud = TRUE) -> -p model=glm -p n=3 -p loud=true: the VM checks each
# against the pipeline's params: (types, choices, did-you-mean), as for `flank run -p`.
param_options <- function(params) {
  if (!length(params)) return(character())
  if (is.null(names(params)) || any(!nzchar(names(params)))) {
    flank_error("every parameter needs its name", "e.g. params = list(model = \"glm\", n = 3)")
  }
  values <- vapply(params, function(v) {
    if (length(v) != 1) flank_error("each parameter takes one value", "e.g. params = list(n = 3)")
    if (is.logical(v)) tolower(as.character(v)) else format(v, scientific = FALSE, trim = TRUE)
  }, "")
  as.vector(rbind("-p", paste0(names(params), "=", values)))
}

