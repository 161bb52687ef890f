# The package against a real flank VM over real ssh (set up by tests/r/rpkg_test.py).

test_that("flank_status shows each pipeline with its last run", {
  skip_without_vm()
  status <- in_clone(flank_status())
  expect_s3_class(status, "data.frame")
  expect_true(all(c("nightly", "slow", "onpush") %in% status$pipeline))
  expect_true(is.na(status$run_id[status$pipeline == "nightly"]))
})

test_that("flank_plan says what a run would do with each task, and why", {
  skip_without_vm()
  plan <- in_clone(flank_plan("nightly"))
  expect_equal(plan$task, c("extract", "report"))
  expect_equal(plan$decision, c("run", "run"))
  expect_match(plan$reason[1], "no outputs declared")
})

test_that("flank_run follows the run in the console and returns its result", {
  skip_without_vm()
  out <- capture.output(run <- in_clone(flank_run("nightly")), type = "output")
  expect_true(any(grepl("^extract \\| extracted rows$", out)), info = paste(out, collapse = "\n"))
  expect_true(any(grepl("^report \\| report done$", out)))
  expect_true(any(grepl("nightly #1 success", out)))
  expect_equal(run$status, "success")
  expect_equal(run$tasks$report$status, "success")
  printed <- capture.output(print(run))  # polish f: a short summary, not the nested record
  expect_match(printed[1], "^nightly #1 success \u2014 started ")
  expect_length(printed, 3L)
})

test_that("flank_run passes parameters, checked on the VM", {
  skip_without_vm()
  out <- capture.output(run <- in_clone(flank_run("greet", params = list(who = "ada", loud = TRUE))), type = "output")
  expect_true(any(grepl("hello ada loud=true", out)), info = paste(out, collapse = "\n"))
  expect_equal(run$status, "success")
  expect_error(in_clone(flank_run("greet", params = list(whoo = "x"))), "did you mean 'who'")
})

test_that("flank_logs gives the tasks of a run, and a task's log", {
  skip_without_vm()
  tasks <- in_clone(flank_logs("nightly", run = 1))
  expect_equal(tasks$task, c("extract", "report"))
  expect_equal(tasks$status, c("success", "success"))
  # polish g: each log by its address on the status site, not by its path on the VM
  expect_equal(tasks$log, sprintf("http://127.0.0.1:8083/demo/nightly/1/logs/%s.txt", c("extract", "report")))
  out <- capture.output(in_clone(flank_logs("nightly", "extract")))
  expect_equal(out, "extracted rows")
  runs <- in_clone(flank_runs("nightly"))
  expect_equal(runs$run_id[1], 1L)
  expect_equal(runs$status[1], "success")
})

test_that("flank_cancel stops a running run", {
  skip_without_vm()
  started <- in_clone(flank_run("slow", follow = FALSE))
  run <- in_clone(flank_cancel("slow"))
  expect_equal(run$status, "cancelled")
  expect_equal(run$run_id, started$run_id)
})

test_that("an interrupted follow asks; unanswered, the run goes on and the console says how to follow it", {
  skip_without_vm()
  started <- in_clone(flank_run("slow", follow = FALSE))
  # Ctrl-C once the follower's ssh is running (this test's own FLANK_HOME on its command line), again
  # while that ssh is still there: R ignores SIGINT inside system(), and the follower's ssh can start
  # before the system() that starts it has returned (a first Ctrl-C then never reaches R)
  ctrl_c <- tempfile(fileext = ".sh")
  writeLines(c(
    sprintf("pattern=%s", shQuote(paste0(dirname(vm("bare")), ".*slow ", started$run_id, " --follow"))),
    "for i in $(seq 200); do pgrep -f -- \"$pattern\" >/dev/null && break; sleep 0.05; done",
    sprintf("for i in $(seq 20); do kill -INT %d; sleep 2; pgrep -f -- \"$pattern\" >/dev/null || break; done", Sys.getpid())
  ), ctrl_c)
  system(paste("sh", ctrl_c, "&"))
  expect_message(in_clone(flank_logs("slow", run = started$run_id, follow = TRUE)), "goes on; follow it again")
  expect_equal(in_clone(flank_status())$status[2], "running")
  expect_equal(in_clone(flank_cancel("slow"))$status, "cancelled")
})

test_that("flank_secret_set sends the value on stdin only", {
  skip_without_vm()
  expect_message(in_clone(flank_secret_set("API_TOKEN", value = vm("secret"))), "set API_TOKEN for demo")
  # no file the package wrote, here or in R's temp folder, holds the value
  files <- c(list.files(tempdir(), full.names = TRUE, recursive = TRUE, all.files = TRUE),
             list.files(vm("clone"), full.names = TRUE, recursive = TRUE, all.files = TRUE))
  for (f in files) {
    bytes <- readBin(f, "raw", file.size(f))
    expect_equal(length(grepRaw(vm("secret"), bytes, fixed = TRUE)), 0L, info = f)
  }
})

test_that("flank_push pushes and follows the run the push started", {
  skip_without_vm()
  in_clone({
    cat("# pushed from R\n", file = "README.md", append = TRUE)
    system2("git", c("commit", "-qam", shQuote("from R")))
    out <- capture.output(result <- flank_push(run = "nightly"), type = "output")
  })
  expect_true(any(grepl("flank: started onpush", out)), info = paste(out, collapse = "\n"))
  expect_true(any(grepl("^hello \\| pushed$", out)), info = paste(out, collapse = "\n"))
  expect_equal(result$onpush$status, "success")
  expect_equal(result$nightly$status, "success")
  expect_equal(result$nightly$trigger, "push")
})

test_that("flank_push() with no run = pushes (the addin's call) and follows what on_push started", {
  # third trial: without run =, git was called as `git push 'run=' flank HEAD:main` and every push failed
  skip_without_vm()
  in_clone({
    cat("# pushed from R, no run\n", file = "README.md", append = TRUE)
    system2("git", c("commit", "-qam", shQuote("from R, no run")))
    out <- capture.output(result <- flank_push(), type = "output")
  })
  expect_true(any(grepl("flank: started onpush", out)), info = paste(out, collapse = "\n"))
  expect_equal(names(result), "onpush")
  expect_equal(result$onpush$status, "success")
})

test_that("a failed run says how to read the failed task's log and rerun the failures, in R", {
  # third trial: flank run and flank remote run print both commands; flank_run() printed neither
  skip_without_vm()
  said <- character()
  result <- withCallingHandlers(
    in_clone(flank_run("broken")),
    message = function(m) {
      said <<- c(said, conditionMessage(m))
      invokeRestart("muffleMessage")
    }
  )
  expect_equal(result$status, "failed")
  expect_true(any(grepl('log: flank_logs("broken", "boom", run = 1)', said, fixed = TRUE)), info = said)
  expect_true(any(grepl('rerun the failures: flank_run("broken", rerun = 1)', said, fixed = TRUE)), info = said)
})

test_that("flank_view opens the site through an ssh tunnel, stopped by flank_view_stop", {
  skip_without_vm()
  seen <- NULL
  old <- options(browser = function(url) seen <<- url, viewer = NULL)
  on.exit(options(old))
  page <- in_clone(flank_view())
  expect_equal(seen, page)
  port <- as.integer(sub("^http://127.0.0.1:([0-9]+)/demo/$", "\\1", page))
  expect_false(is.na(port))
  con <- socketConnection("127.0.0.1", port, open = "r+", timeout = 5)
  close(con)
  flank_view_stop()
  expect_error(suppressWarnings(socketConnection("127.0.0.1", port, open = "r", timeout = 1)))
})

test_that("bad input gets one message saying what to do", {
  skip_without_vm()
  expect_error(in_clone(flank_plan("nightlx")), "did you mean 'nightly'")
  expect_error(in_clone(flank_logs("nightly", "extrct")), "did you mean 'extract'")
  expect_error(in_clone(flank_status(remote = "nosuch")), "git remote add flank")
  # ssh fails: ssh's own words, and what to check
  in_clone(system2("git", c("remote", "add", "dead", shQuote(vm("dead_url")))))
  err <- expect_error(in_clone(flank_status(remote = "dead")), class = "flank_ssh_error")
  expect_match(conditionMessage(err), "Connection refused")
  expect_match(conditionMessage(err), "check the host key")
})

test_that("a VM flank older than the package says: update flank on the VM, with both versions", {
  skip_without_vm()
  bare <- vm("bare")
  key <- "flank.command"
  old <- system2("git", c(paste0("--git-dir=", bare), "config", "--get", key), stdout = TRUE)
  on.exit(system2("git", c(paste0("--git-dir=", bare), "config", key, shQuote(old))))
  old_flank <- file.path(tempdir(), "old-flank")
  writeLines(c("#!/bin/sh",
               "case \"$1\" in --version) echo 'flank 0.0.9'; exit 0;; esac",
               "echo 'usage: flank ...' >&2; echo 'flank: error: unrecognized arguments: --json' >&2; exit 2"), old_flank)
  Sys.chmod(old_flank, "755")
  system2("git", c(paste0("--git-dir=", bare), "config", key, old_flank))
  err <- expect_error(in_clone(flank_status()), class = "flank_version_error")
  expect_match(conditionMessage(err), "update flank on the VM")
  expect_match(conditionMessage(err), "flank 0.0.9")
  expect_match(conditionMessage(err), "needs schema 1")
})
