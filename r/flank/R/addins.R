# RStudio addins (inst/rstudio/addins.dcf), in the project that is open.

project_dir <- function() {
  if (requireNamespace("rstudioapi", quietly = TRUE) && rstudioapi::isAvailable()) {
    dir <- tryCatch(rstudioapi::getActiveProject(), error = function(e) NULL)
    if (!is.null(dir)) return(dir)
  }
  "."
}

addin_push <- function() flank_push(dir = project_dir())

addin_status <- function() print(flank_status(dir = project_dir()))

addin_view <- function() flank_view(dir = project_dir())
