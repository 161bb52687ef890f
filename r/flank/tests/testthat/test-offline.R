# What needs no VM: the remote URL, the ssh command line, the schema check.

test_that("remote URLs give the VM, FLANK_HOME and project as flank remote reads them", {
  t <- flank:::parse_remote_url("ssh://ada@vm.example:2222/home/ada/flank/demo.git")
  expect_equal(t[c("destination", "port", "git_dir", "flank_home", "project")],
               list(destination = "ada@vm.example", port = 2222L, git_dir = "/home/ada/flank/demo.git",
                    flank_home = "/home/ada/flank", project = "demo"))
  t <- flank:::parse_remote_url("ada@vm:flank/demo.git")
  expect_equal(c(t$destination, t$git_dir, t$flank_home), c("ada@vm", "flank/demo.git", "flank"))
  expect_error(flank:::parse_remote_url("https://github.com/x/demo.git"), "not an ssh URL")
  expect_error(flank:::parse_remote_url("ada@vm:flank/demo"), "does not end in NAME.git")
})

test_that("words reach the VM's shell quoted as Python's shlex.quote quotes them", {
  expect_equal(flank:::sh_quote(c("plain-word_1.x", "", "it's", "a b")), c("plain-word_1.x", "''", "'it'\"'\"'s'", "'a b'"))
  expect_equal(flank:::shell_split("ssh -i '/a b/key' -o \"X=1 2\" plain"), c("ssh", "-i", "/a b/key", "-o", "X=1 2", "plain"))
})

test_that("an answer that does not fit the schema is refused, naming where", {
  good <- list(schema = 1L, flank = "0.1.0", kind = "secrets", project = "demo", names = list("A"))
  expect_true(flank:::check_answer(good))
  bad <- good
  bad$names <- "A"
  expect_error(flank:::check_answer(bad), "secrets\\$names")
  bad <- good
  bad$project <- NULL
  expect_error(flank:::check_answer(bad), "lacks project")
})

test_that("times are in the pipeline's zone, as flank status and the site show them", {
  # third trial: flank_status() printed 10:52 (UTC) for a run `flank remote status` showed at 02:51 PST
  run <- list(run_id = 4L, status = "success", started_at = "2026-12-06T10:52:08.905+00:00",
              timezone = "America/Los_Angeles")
  row <- flank:::run_row("daily", run)
  expect_equal(format(row$started, "%H:%M %Z"), "02:52 PST")
  expect_equal(as.numeric(row$started), as.numeric(as.POSIXct("2026-12-06 10:52:08", tz = "UTC")))
  # no zone in the record (the VM's own) or one this R does not know: UTC, as before
  run$timezone <- NULL
  expect_equal(format(flank:::run_row("daily", run)$started, "%H:%M %Z"), "10:52 UTC")
  run$timezone <- "Not/AZone"
  expect_equal(format(flank:::run_row("daily", run)$started, "%H:%M %Z"), "10:52 UTC")
})

test_that("params become -p NAME=VALUE options, as flank run takes them", {
  expect_equal(param_options(list()), character())
  expect_equal(
    param_options(list(model = "glm", n = 3, loud = TRUE, day = as.Date("2026-11-01"))),
    c("-p", "model=glm", "-p", "n=3", "-p", "loud=true", "-p", "day=2026-11-01")
  )
  expect_error(param_options(list("glm")), "needs its name")
  expect_error(param_options(list(n = 1:2)), "one value")
})


test_that("a run prints as a short summary, as `flank logs` shows it, and stays the record", {
  # polish f: flank_run()'s result printed as a nested list of every field of run.json
  at <- "2026-12-06T10:52:08.905+00:00"
  run <- flank:::as_flank_run(list(
    pipeline = "nightly", run_id = 3L, status = "failed", started_at = at, timezone = "Europe/London",
    duration_s = 75.2, summary = "1 failed, 1 succeeded",
    tasks = list(
      extract = list(status = "success", started_at = at, duration_s = 1.25, exit_code = 0L),
      model = list(status = "failed", started_at = at, duration_s = 73, exit_code = 3L),
      report = list(status = "upstream_failed", started_at = NULL, duration_s = NULL, exit_code = NULL)
    )
  ))
  out <- capture.output(print(run))
  expect_equal(out, c(
    "nightly #3 failed \u2014 started Sun 06 Dec 10:52 GMT \u2014 1 failed, 1 succeeded",
    "  extract  success         10:52:08 GMT    1.2s",
    "  model    failed          10:52:08 GMT   1m13s",
    "  report   upstream_failed"
  ))
  expect_equal(run$tasks$model$status, "failed")
  expect_equal(run$run_id, 3L)
})
