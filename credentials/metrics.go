package credentials

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tehaishokunin/calsync/db"
)

var expiryDesc = prometheus.NewDesc("calsync_credentials_secret_expiry_timestamp_seconds",
	"When each company's client secret expires (Unix seconds), for the companies that gave the date.", []string{"company"}, nil)

// RegisterMetrics exposes every company's secret expiry on reg, read from
// Postgres at each scrape (one series per company that gave one).
func RegisterMetrics(reg prometheus.Registerer, store *db.Store) {
	if reg != nil {
		reg.MustRegister(&expiryCollector{store: store})
	}
}

type expiryCollector struct{ store *db.Store }

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	expiries, err := c.store.SecretExpiries(ctx)
	if err != nil {
		return
	}
	for company, at := range expiries {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(at.Unix()), company)
	}
}
