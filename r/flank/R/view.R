# The status site in RStudio's Viewer (or the browser). When flank.toml sets no site_url the
# site is the VM's own (`flank serve` on 127.0.0.1:8083), reached through an ssh tunnel that
# this package starts once, with the same ssh as everything else, and stops when R exits.

tunnels <- new.env(parent = emptyenv())

flank_view <- function(run = NULL, pipeline = NULL, remote = "flank", dir = ".") {
  target <- flank_target(remote, dir)
  answer <- ask(target, c("status", target$project))
  project <- answer$projects[[1]]
  page <- project$site$url
  if (!is.null(pipeline) || !is.null(run)) {
    pipelines <- project$pipelines
    chosen <- if (is.null(pipeline)) pipelines[[1]] else Filter(function(p) p$pipeline == pipeline, pipelines)[[1]]
    id <- if (is.null(run)) chosen$last_run_id else run
    page <- paste0(project$site$url, utils::URLencode(target$project), "/", chosen$pipeline, "/", if (!is.null(id)) paste0(id, "/"))
  } else {
    page <- paste0(page, utils::URLencode(target$project), "/")
  }
  if (!isTRUE(project$site$configured)) page <- through_tunnel(target, page)
  open_page(page)
  invisible(page)
}

open_page <- function(url) {
  viewer <- getOption("viewer")
  local <- grepl("^https?://(127\\.0\\.0\\.1|localhost)[:/]", url)
  if (local && requireNamespace("rstudioapi", quietly = TRUE) && rstudioapi::isAvailable()) {
    rstudioapi::viewer(url)
  } else if (local && is.function(viewer)) {
    viewer(url)
  } else {
    utils::browseURL(url)
  }
}

free_port <- function() {
  for (i in 1:20) {
    port <- sample(20000:60000, 1)
    con <- tryCatch(suppressWarnings(socketConnection("127.0.0.1", port, open = "r", timeout = 1)), error = function(e) NULL)
    if (is.null(con)) return(port)
    close(con)
  }
  flank_error("no free local port for the tunnel")
}

# http://127.0.0.1:8083/demo/ -> http://127.0.0.1:<local port>/demo/ through `ssh -N -L`.
through_tunnel <- function(target, url) {
  parts <- regmatches(url, regexec("^(https?)://([^/:]+)(:([0-9]+))?(/.*)?$", url))[[1]]
  remote_port <- if (nzchar(parts[5])) parts[5] else "80"
  key <- paste(target$destination, target$port, remote_port)
  tunnel <- tunnels[[key]]
  if (is.null(tunnel) || !tools::pskill(tunnel$pid, 0L)) {
    port <- free_port()
    argv <- c(
      ssh_program(target$dir), if (!is.na(target$port)) c("-p", target$port),
      # a connection of its own (-S none: never a shared ControlMaster's, whose master would keep the
      # forward after this ssh is stopped; -S wins over any ControlPath before it), so stopping it closes the tunnel
      "-N", "-S", "none", "-o", "ExitOnForwardFailure=yes", "-L", paste0("127.0.0.1:", port, ":", parts[3], ":", remote_port),
      "--", target$destination
    )
    files <- start_background(argv)
    pid <- background_pid(files)
    for (i in 1:100) {
      con <- tryCatch(suppressWarnings(socketConnection("127.0.0.1", port, open = "r", timeout = 1)), error = function(e) NULL)
      if (!is.null(con)) {
        close(con)
        break
      }
      if (file.exists(files$rc) && length(readLines(files$rc, warn = FALSE))) {
        ssh_failed(target, readLines(files$out, warn = FALSE))
      }
      Sys.sleep(0.1)
    }
    tunnel <- list(pid = pid, port = port, files = files)
    tunnels[[key]] <- tunnel
  }
  paste0(parts[2], "://127.0.0.1:", tunnel$port, parts[6])
}

flank_view_stop <- function() {
  for (key in ls(tunnels)) {
    tunnel <- tunnels[[key]]
    tools::pskill(tunnel$pid)
    for (i in 1:50) {  # gone once sh has its exit code
      if (file.exists(tunnel$files$rc) && length(readLines(tunnel$files$rc, warn = FALSE))) break
      Sys.sleep(0.1)
    }
    unlink(unlist(tunnel$files))
    rm(list = key, envir = tunnels)
  }
  invisible(NULL)
}
