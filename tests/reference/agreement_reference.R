# Reference numbers for hemiface.stats' agreement measures (icc, weighted_kappa, fleiss_kappa).
#
#   cd tests/reference && Rscript agreement_reference.R
#
# Needs R with psych (ICC) and vcd (weighted kappa, its ASE and interval); on Debian:
#   apt-get install -y r-base-core r-cran-psych r-cran-vcd
# Reads the agreement_*.csv datasets beside this script (wide: subject, then one column per
# rater) and writes agreement_reference.csv: one number per row (case, quantity, value), 17
# significant digits. R is only needed to regenerate these numbers; it is not a hemiface dependency.
#
# Two quantities are written here from their published formulas, because the R package that has
# them (irr: kappa2, kappam.fleiss) is not packaged for Debian and CRAN is not reachable from the
# machines that made this file: Fleiss' kappa with the standard error under kappa = 0 of Fleiss,
# Nee & Landis (1979) -- irr::kappam.fleiss's formula -- and the null standard error of Cohen's
# (weighted) kappa of Fleiss, Cohen & Everitt (1969), used for its z test.

suppressPackageStartupMessages({ library(psych); library(vcd) })

out <- list()
put <- function(case, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(case = case, quantity = quantity,
                                        value = sprintf("%.17g", as.numeric(value)))
}
ratings <- function(case) {
  d <- read.csv(paste0(case, ".csv"))
  as.matrix(d[, -1])
}

# ---- ICC: psych::ICC, the ANOVA (lmer = FALSE) on complete subjects
icc_names <- c(ICC1 = "ICC(1,1)", ICC2 = "ICC(2,1)", ICC3 = "ICC(3,1)", ICC1k = "ICC(1,k)", ICC2k = "ICC(2,k)",
               ICC3k = "ICC(3,k)")
for (case in c("agreement_shrout_fleiss", "agreement_two_raters", "agreement_three_raters",
               "agreement_five_point", "agreement_negative_icc")) {
  x <- na.omit(ratings(case))
  res <- ICC(x, lmer = FALSE, alpha = 0.05)$results
  for (i in seq_len(nrow(res))) {
    form <- icc_names[[res$type[i]]]
    put(case, paste0(form, ".estimate"), res$ICC[i])
    put(case, paste0(form, ".F"), res$F[i])
    put(case, paste0(form, ".df1"), res$df1[i])
    put(case, paste0(form, ".df2"), res$df2[i])
    put(case, paste0(form, ".p"), res$p[i])
    put(case, paste0(form, ".ci_low"), res$`lower bound`[i])
    put(case, paste0(form, ".ci_high"), res$`upper bound`[i])
  }
  put(case, "icc.n_subjects", nrow(x))
}

# ---- Cohen's kappa, two raters: vcd::Kappa (estimate, ASE, 95% interval) on the full scale's table
kappa_null_se <- function(tab, w) {  # w: agreement weights (1 on the diagonal); Fleiss, Cohen & Everitt (1969)
  p <- tab / sum(tab); pr <- rowSums(p); pc <- colSums(p)
  pe <- sum(w * outer(pr, pc))
  wr <- as.vector(w %*% pc)  # weighted mean agreement of row category i over the column margin
  wc <- as.vector(t(w) %*% pr)
  sqrt((sum(outer(pr, pc) * (w - outer(wr, wc, "+"))^2) - pe^2) / ((1 - pe)^2 * sum(tab)))
}
kappa_case <- function(case, x, levels) {
  x <- na.omit(x)
  tab <- table(factor(x[, 1], levels = levels), factor(x[, 2], levels = levels))
  k <- length(levels)
  d <- abs(outer(levels, levels, "-")) / (max(levels) - min(levels))
  for (form in c("unweighted", "linear", "quadratic")) {
    vw <- if (form == "quadratic") "Fleiss-Cohen" else "Equal-Spacing"
    fit <- Kappa(tab, weights = vw)
    part <- if (form == "unweighted") "Unweighted" else "Weighted"
    est <- fit[[part]][["value"]]
    ase <- fit[[part]][["ASE"]]
    ci <- confint(fit, level = 0.95)[part, ]
    w <- switch(form, unweighted = diag(k), linear = 1 - d, quadratic = 1 - d^2)
    se0 <- kappa_null_se(tab, w)
    put(case, paste0(form, ".estimate"), est)
    put(case, paste0(form, ".se"), ase)
    put(case, paste0(form, ".ci_low"), ci[1])
    put(case, paste0(form, ".ci_high"), ci[2])
    put(case, paste0(form, ".z"), est / se0)
    put(case, paste0(form, ".p"), 2 * pnorm(-abs(est / se0)))
  }
  put(case, "kappa.n_subjects", nrow(x))
}
kappa_case("agreement_two_raters", ratings("agreement_two_raters"), -2:2)
kappa_case("agreement_three_raters_r1r2", ratings("agreement_three_raters")[, 1:2], -2:2)
kappa_case("agreement_five_point_r1r4", ratings("agreement_five_point")[, c(1, 4)], 1:5)
# intervals that reach past kappa's range: vcd's confint caps them to [-1, 1]
kappa_case("agreement_kappa_high", ratings("agreement_kappa_high"), 1:4)
kappa_case("agreement_kappa_low", ratings("agreement_kappa_low"), 1:2)

# ---- Fleiss' kappa (Fleiss 1971) and its z test (Fleiss, Nee & Landis 1979), as irr::kappam.fleiss
fleiss <- function(case) {
  x <- na.omit(ratings(case))
  ns <- nrow(x); nr <- ncol(x)
  levels <- sort(unique(as.vector(x)))
  counts <- t(apply(x, 1, function(r) table(factor(r, levels = levels))))
  pj <- colSums(counts) / (ns * nr)
  pbar <- mean((rowSums(counts^2) - nr) / (nr * (nr - 1)))
  pe <- sum(pj^2)
  kappa <- (pbar - pe) / (1 - pe)
  se0 <- sqrt((2 / (sum(pj * (1 - pj))^2 * (ns * nr * (nr - 1)))) *
              (sum(pj * (1 - pj))^2 - sum(pj * (1 - pj) * (1 - 2 * pj))))
  put(case, "fleiss.estimate", kappa)
  put(case, "fleiss.se", se0)
  put(case, "fleiss.z", kappa / se0)
  put(case, "fleiss.p", 2 * (1 - pnorm(abs(kappa / se0))))
  put(case, "fleiss.n_subjects", ns)
}
for (case in c("agreement_three_raters", "agreement_five_point", "agreement_fleiss_wikipedia",
               "agreement_shrout_fleiss")) fleiss(case)

write.csv(do.call(rbind, out), "agreement_reference.csv", row.names = FALSE)  # quoted: the ICC forms hold commas
cat("wrote agreement_reference.csv:", length(out), "numbers,", R.version.string, "\n")
