# extract.R — pull yesterday's sales into data/raw_sales.csv.
# (The demo makes its data up, so it runs on a VM with no network and no packages.)
set.seed(as.integer(format(Sys.Date(), "%Y%m%d")))
regions <- strsplit(Sys.getenv("SALES_REGIONS", "north,south"), ",")[[1]]
n <- 2000
raw <- data.frame(
  day = sample(seq(Sys.Date() - 90, Sys.Date() - 1, by = "day"), n, replace = TRUE),
  region = sample(regions, n, replace = TRUE),
  price = round(runif(n, 2, 40), 2),
  promo = rbinom(n, 1, 0.3)
)
raw$units <- rpois(n, lambda = 20 - 0.3 * raw$price + 6 * raw$promo)
raw$units[sample(n, 25)] <- NA   # real data has holes
dir.create("data", showWarnings = FALSE)
write.csv(raw, "data/raw_sales.csv", row.names = FALSE)
cat(sprintf("extracted %d rows for %d regions\n", nrow(raw), length(regions)))
