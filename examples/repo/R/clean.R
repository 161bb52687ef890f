# clean.R — drop incomplete rows and impossible values; write data/sales.csv.
raw <- read.csv("data/raw_sales.csv", stringsAsFactors = FALSE)
clean <- raw[complete.cases(raw) & raw$price > 0 & raw$units >= 0, ]
clean$day <- as.Date(clean$day)
write.csv(clean, "data/sales.csv", row.names = FALSE)
cat(sprintf("kept %d of %d rows (%d dropped)\n", nrow(clean), nrow(raw), nrow(raw) - nrow(clean)))
