# Following a run from the R console: `flank logs PROJECT PIPELINE RUN --follow` over ssh,
# started in the background with its output in a file that R reads as it grows, so the
# console stays R's: each line is printed as it comes (task name coloured where the console
# has colours), and an interrupt (Esc, Ctrl-C) asks whether to cancel the run on the VM.

POLL_S <- 0.05

colours_on <- function() {
  !identical(Sys.getenv("TERM"), "dumb") && is.null(getOption("flank.no_colour")) &&
    (isatty(stdout()) || identical(Sys.getenv("RSTUDIO"), "1"))
}

paint <- function(text, status) {
  if (!colours_on()) return(text)
  code <- switch(status,
    success = "32", up_to_date = "32", failed = "31", timed_out = "31", interrupted = "33",
    cancelled = "33", upstream_failed = "33", running = "36", task = "36", "0"
  )
  paste0("\033[", code, "m", text, "\033[0m")
}

show_line <- function(line, pipeline) {
  if (startsWith(line, "flank: ")) {
    status <- regmatches(line, regexpr("(success|failed|interrupted|cancelled|timed_out)", line))
    cat(paint(line, if (length(status)) status else "0"), "\n", sep = "")
    return(invisible())
  }
  split <- regexpr(" | ", line, fixed = TRUE)
  if (split > 0) {
    cat(paint(substr(line, 1, split - 1), "task"), substring(line, split), "\n", sep = "")
  } else {
    cat(line, "\n", sep = "")
  }
  utils::flush.console()
}

# Start `argv` in the background: its output to `files$out`, its pid and (when it ends) exit code to files.
start_background <- function(argv) {
  files <- list(out = tempfile("flank-follow-"), pid = tempfile("flank-pid-"), rc = tempfile("flank-rc-"))
  file.create(files$out)
  script <- paste0(
    command_line(argv), " </dev/null >", sh_quote(files$out), " 2>&1 & echo $! >", sh_quote(files$pid),
    "; wait $!; echo $? >", sh_quote(files$rc)
  )
  system(paste("sh -c", sh_quote(script), "2>/dev/null"), wait = FALSE)  # no "Terminated" from sh when stopped
  files
}

background_pid <- function(files) {
  for (i in 1:100) {
    if (file.exists(files$pid) && length(pid <- readLines(files$pid, warn = FALSE))) return(as.integer(pid))
    Sys.sleep(0.01)
  }
  NA_integer_
}

stop_background <- function(files) {
  pid <- background_pid(files)
  if (!is.na(pid)) tools::pskill(pid)
}

follow_run <- function(target, pipeline, run_id, task) {
  argv <- ssh_argv(target, c("logs", target$project, pipeline, as.character(run_id), task, "--follow"), target$dir)
  files <- start_background(argv)
  on.exit(unlink(unlist(files)), add = TRUE)
  status <- tryCatch(tail_until_done(files, pipeline), interrupt = function(e) {
    stop_background(files)
    interrupted(target, pipeline, run_id)
    NULL
  })
  if (is.null(status)) return(invisible(NULL))
  if (status == 255) ssh_failed(target, readLines(files$out, warn = FALSE))
  meta <- ask(target, c("logs", target$project, pipeline, as.character(run_id)))
  if (is.null(task)) say_next_steps(pipeline, meta$run)
  invisible(as_flank_run(meta$run))
}

# After a failed run, the R twins of what `flank remote run` prints: the failed task's log, the rerun.
say_next_steps <- function(pipeline, run) {
  failed <- names(Filter(function(t) isTRUE(t$status %in% c("failed", "timed_out")), run$tasks))
  if (!length(failed)) return(invisible())
  message(sprintf("  log: flank_logs(\"%s\", \"%s\", run = %d)", pipeline, failed[1], run$run_id))
  message(sprintf("  rerun the failures: flank_run(\"%s\", rerun = %d)", pipeline, run$run_id))
}

# Print the output file as it grows; the exit code once the follower ended.
tail_until_done <- function(files, pipeline) {
  offset <- 0
  pending <- raw()
  repeat {
    done <- file.exists(files$rc) && length(readLines(files$rc, warn = FALSE)) > 0
    size <- file.size(files$out)
    if (!is.na(size) && size > offset) {
      con <- file(files$out, "rb")
      seek(con, offset)
      chunk <- readBin(con, "raw", size - offset)
      close(con)
      offset <- offset + length(chunk)
      pending <- c(pending, chunk)
      ends <- which(pending == as.raw(10L))
      if (length(ends)) {
        text <- rawToChar(pending[seq_len(ends[length(ends)] - 1L)])
        for (line in strsplit(text, "\n", fixed = TRUE)[[1]]) show_line(line, pipeline)
        pending <- pending[-seq_len(ends[length(ends)])]
      }
    } else if (done) {
      if (length(pending)) show_line(rawToChar(pending), pipeline)
      return(as.integer(readLines(files$rc, warn = FALSE)[1]))
    } else {
      Sys.sleep(POLL_S)
    }
  }
}

# An interrupted follow never leaves the run without asking what to do with it.
interrupted <- function(target, pipeline, run_id) {
  again <- sprintf("flank_logs(\"%s\", run = %d, follow = TRUE)", pipeline, run_id)
  answer <- if (interactive()) readline(sprintf("cancel %s #%d on the VM too? [y/N] ", pipeline, run_id)) else ""
  if (tolower(substr(answer, 1, 1)) == "y") {
    flank_cancel(pipeline, run_id, remote = target$remote, dir = target$dir)
  } else {
    message(sprintf("flank: %s #%d goes on; follow it again with %s", pipeline, run_id, again))
  }
}
