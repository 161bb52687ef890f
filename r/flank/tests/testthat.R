library(testthat)
library(flank)

test_check("flank")
