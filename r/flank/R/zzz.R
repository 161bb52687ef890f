.onLoad <- function(libname, pkgname) {
  # tunnels of flank_view() end with the R session
  reg.finalizer(tunnels, function(e) flank_view_stop(), onexit = TRUE)
}
