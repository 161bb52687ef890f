# regions.R — units and revenue per region (runs beside model.R), with a plot and a small HTML report.
sales <- read.csv("data/sales.csv", stringsAsFactors = FALSE)
sales$revenue <- sales$units * sales$price
by_region <- aggregate(cbind(units, revenue) ~ region, data = sales, FUN = sum)
by_region <- by_region[order(-by_region$revenue), ]
dir.create("output", showWarnings = FALSE)
write.csv(by_region, "output/regions.csv", row.names = FALSE)
print(by_region, row.names = FALSE)

# A plot with base R only (png() draws with cairo: no X server, no extra packages).
png("output/revenue_by_region.png", width = 800, height = 500, type = "cairo")
barplot(by_region$revenue, names.arg = by_region$region, col = "steelblue",
        main = "Revenue by region", ylab = "revenue")
invisible(dev.off())

# A small HTML report written by R itself (no rmarkdown/pandoc needed); flank keeps it with
# the run (artifacts: in flank.yml), so the site links it and latest/ serves the newest one.
esc <- function(x) gsub("<", "&lt;", gsub("&", "&amp;", as.character(x), fixed = TRUE), fixed = TRUE)
rows <- sprintf("<tr><td>%s</td><td>%s</td><td>%.2f</td></tr>",
                esc(by_region$region), format(by_region$units, big.mark = ","), by_region$revenue)
writeLines(c(
  "<!doctype html>", "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Revenue by region</title>",
  "<style>body{font-family:sans-serif;max-width:50rem;margin:2rem auto}td,th{padding:.2rem .8rem;text-align:right}</style>",
  "</head><body>",
  sprintf("<h1>Revenue by region</h1><p>Run %s of commit %s, %s.</p>",
          esc(Sys.getenv("FLANK_RUN_ID", "by hand")), esc(substr(Sys.getenv("FLANK_COMMIT", "unknown"), 1, 7)),
          format(Sys.Date(), "%d %b %Y")),
  "<img src=\"revenue_by_region.png\" alt=\"Revenue by region\" style=\"max-width:100%\">",
  "<table><tr><th>region</th><th>units</th><th>revenue</th></tr>", rows, "</table>",
  "</body></html>"
), "output/regions.html")
