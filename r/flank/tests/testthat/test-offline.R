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
