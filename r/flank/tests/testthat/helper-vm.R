# The VM these tests drive: a real sshd on 127.0.0.1 and a real flank, set up by
# tests/r/rpkg_test.py (flank's own test suite), which passes where things are in FLANK_TEST_*.
# Without it (R CMD check on its own) the tests that need the VM are skipped.

vm <- function(name) Sys.getenv(paste0("FLANK_TEST_", toupper(name)))

skip_without_vm <- function() {
  skip_if(!nzchar(vm("clone")), "no test VM (tests/r/rpkg_test.py sets one up)")
}

in_clone <- function(code) {
  old <- setwd(vm("clone"))
  on.exit(setwd(old))
  force(code)
}
