# Reference numbers for hemiface.stats, computed with base R (stats package only).
#
#   cd tests/reference && Rscript stats_reference.R
#
# Reads the CSV datasets beside this script and writes stats_reference.csv:
# one number per row (case, quantity, value), printed with 17 significant digits.
# R is only needed to regenerate these numbers; it is not a hemiface dependency.

out <- list()
put <- function(case, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(case = case, quantity = quantity,
                                        value = sprintf("%.17g", as.numeric(value)))
}
htest <- function(case, prefix, h) {
  if (!is.null(h$statistic)) put(case, paste0(prefix, ".statistic"), h$statistic)
  if (!is.null(h$parameter)) put(case, paste0(prefix, ".df"), h$parameter[1])
  put(case, paste0(prefix, ".p"), h$p.value)
  if (!is.null(h$conf.int)) {
    put(case, paste0(prefix, ".ci_low"), h$conf.int[1])
    put(case, paste0(prefix, ".ci_high"), h$conf.int[2])
    put(case, paste0(prefix, ".conf_level"), attr(h$conf.int, "conf.level"))
  }
  if (!is.null(h$estimate)) {  # a two-sample t test reports both means: compare their difference
    put(case, paste0(prefix, ".estimate"),
        if (length(h$estimate) == 2) h$estimate[1] - h$estimate[2] else h$estimate[1])
  }
}
# fisher.test finds its odds-ratio estimate and interval with uniroot at the default
# tolerance (about 1.2e-4, absolute), too coarse for a small lower bound; the same
# function with uniroot's tolerance tightened to 1e-12 gives the numbers compared.
fisher_tight <- stats::fisher.test
environment(fisher_tight) <- list2env(
  list(uniroot = function(...) stats::uniroot(..., tol = 1e-12)), parent = environment(stats::fisher.test))
quiet <- function(expr) suppressWarnings(expr)  # "cannot compute exact p-value with ties" etc.

# ---- paired: t, Wilcoxon signed-rank (default, exact, normal with and without correction), Shapiro
for (case in c("paired_exact", "paired_ties", "paired_large")) {
  d <- read.csv(paste0(case, ".csv"))
  htest(case, "t", t.test(d$after, d$before, paired = TRUE))
  htest(case, "wilcox_default", quiet(wilcox.test(d$after, d$before, paired = TRUE, conf.int = TRUE, tol.root = 1e-10)))
  htest(case, "wilcox_normal_cc", quiet(wilcox.test(d$after, d$before, paired = TRUE, conf.int = TRUE, tol.root = 1e-10,
                                                    exact = FALSE, correct = TRUE)))
  htest(case, "wilcox_normal", quiet(wilcox.test(d$after, d$before, paired = TRUE, conf.int = TRUE, tol.root = 1e-10,
                                                 exact = FALSE, correct = FALSE)))
  htest(case, "shapiro", shapiro.test(d$after - d$before))
}

# ---- two groups: Welch t, Wilcoxon rank-sum (default, normal with and without correction), Shapiro per group
for (case in c("groups_exact", "groups_ties")) {
  d <- read.csv(paste0(case, ".csv"))
  a <- d$value[d$group == "A"]; b <- d$value[d$group == "B"]
  htest(case, "welch", t.test(a, b, var.equal = FALSE))
  htest(case, "wilcox_default", quiet(wilcox.test(a, b, conf.int = TRUE, tol.root = 1e-10)))
  htest(case, "wilcox_normal_cc", quiet(wilcox.test(a, b, conf.int = TRUE, tol.root = 1e-10, exact = FALSE, correct = TRUE)))
  htest(case, "wilcox_normal", quiet(wilcox.test(a, b, conf.int = TRUE, tol.root = 1e-10, exact = FALSE, correct = FALSE)))
  htest(case, "shapiro_A", shapiro.test(a))
  htest(case, "shapiro_B", shapiro.test(b))
}

# ---- three groups: Kruskal-Wallis on the change; ANCOVA of follow-up on baseline and group
d <- read.csv("ancova.csv")
d$group <- factor(d$group)  # levels adm, fat, flap: adm is the reference
htest("ancova", "kruskal", kruskal.test(d$followup - d$baseline, d$group))
fit <- lm(followup ~ baseline + group, data = d)
co <- summary(fit)$coefficients
ci <- confint(fit, level = 0.95)
for (term in rownames(co)) {
  put("ancova", paste0(term, ".estimate"), co[term, 1])
  put("ancova", paste0(term, ".se"), co[term, 2])
  put("ancova", paste0(term, ".t"), co[term, 3])
  put("ancova", paste0(term, ".p"), co[term, 4])
  put("ancova", paste0(term, ".ci_low"), ci[term, 1])
  put("ancova", paste0(term, ".ci_high"), ci[term, 2])
}
put("ancova", "df_resid", fit$df.residual)
group_f <- anova(lm(followup ~ baseline, data = d), fit)           # omnibus group effect
put("ancova", "group.F", group_f$F[2]); put("ancova", "group.p", group_f$`Pr(>F)`[2])
slopes <- anova(fit, lm(followup ~ baseline * group, data = d))     # homogeneity of regression slopes
put("ancova", "slopes.F", slopes$F[2]); put("ancova", "slopes.p", slopes$`Pr(>F)`[2])
htest("ancova", "shapiro_resid", shapiro.test(residuals(fit)))
two <- droplevels(d[d$group != "flap", ])                           # the two-group ANCOVA too
fit2 <- lm(followup ~ baseline + group, data = two)
co2 <- summary(fit2)$coefficients; ci2 <- confint(fit2)
put("ancova2", "groupfat.estimate", co2["groupfat", 1]); put("ancova2", "groupfat.se", co2["groupfat", 2])
put("ancova2", "groupfat.p", co2["groupfat", 4])
put("ancova2", "groupfat.ci_low", ci2["groupfat", 1]); put("ancova2", "groupfat.ci_high", ci2["groupfat", 2])

# ---- complications: Clopper-Pearson, Fisher 2x2 (A vs B) and 3x2 (Freeman-Halton, exact)
d <- read.csv("complications.csv")
for (i in seq_len(nrow(d))) {
  h <- binom.test(d$events[i], d$n[i])
  put("complications", paste0("binom_", d$group[i], ".ci_low"), h$conf.int[1])
  put("complications", paste0("binom_", d$group[i], ".ci_high"), h$conf.int[2])
}
for (k in list(c(0, 9), c(9, 9))) {
  h <- binom.test(k[1], k[2])
  put("complications", sprintf("binom_%d_of_%d.ci_low", k[1], k[2]), h$conf.int[1])
  put("complications", sprintf("binom_%d_of_%d.ci_high", k[1], k[2]), h$conf.int[2])
}
tab <- cbind(d$events, d$n - d$events)
htest("complications", "fisher_AB", fisher_tight(tab[1:2, ]))
htest("complications", "fisher_ABC", fisher.test(tab))

res <- do.call(rbind, out)
write.csv(res, "stats_reference.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("wrote %d numbers to stats_reference.csv with %s\n", nrow(res), R.version.string))
