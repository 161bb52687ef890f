# model.R — a Poisson GLM of units sold on price and promotion.
sales <- read.csv("data/sales.csv", stringsAsFactors = FALSE)
fit <- glm(units ~ price + promo + region, family = poisson(), data = sales)
print(summary(fit))
coefs <- data.frame(term = names(coef(fit)), estimate = unname(coef(fit)))
dir.create("output", showWarnings = FALSE)
write.csv(coefs, "output/model_coefficients.csv", row.names = FALSE)
cat(sprintf("price elasticity at mean price: %.3f\n", coef(fit)[["price"]] * mean(sales$price)))
