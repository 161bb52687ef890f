# regions.R — units and revenue per region (runs beside model.R).
sales <- read.csv("data/sales.csv", stringsAsFactors = FALSE)
sales$revenue <- sales$units * sales$price
by_region <- aggregate(cbind(units, revenue) ~ region, data = sales, FUN = sum)
by_region <- by_region[order(-by_region$revenue), ]
dir.create("output", showWarnings = FALSE)
write.csv(by_region, "output/regions.csv", row.names = FALSE)
print(by_region, row.names = FALSE)
