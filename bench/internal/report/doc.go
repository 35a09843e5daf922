// Package report holds the small formatting and statistics helpers every
// benchmark's report uses: the load average read from /proc/loadavg, a
// ratio that is 0 when its denominator is not positive, the median of a
// sample, sizes printed as exact GiB/MiB/bytes or as MiB with one decimal,
// and floats printed with one, two or three decimals.
package report
