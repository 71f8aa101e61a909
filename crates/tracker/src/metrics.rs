//! What the tracker is doing, in numbers: `/metrics` in the OpenMetrics text format (which Prometheus reads;
//! encoded by prometheus-client) and `/stats.json` with the same figures.
//!
//! The figures are taken when asked for: the request counters are the workers' own (one cache line each, never
//! shared while counting), and the swarm totals are summed shard by shard, each lock held for one pass over its
//! swarms.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::swarm::Totals;

/// One front end's or worker's request counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    pub connects: u64,
    pub announces: u64,
    pub scrapes: u64,
    pub errors_sent: u64,
    pub dropped: u64,
}

/// Everything `/metrics` and `/stats.json` show, taken at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Each UDP worker's counters, in worker order.
    pub udp_workers: Vec<Requests>,
    pub http: Requests,
    pub totals: Totals,
    pub expiry_passes: u64,
    pub expired_peers: u64,
    pub uptime_seconds: u64,
}

impl Snapshot {
    fn udp(&self) -> Requests {
        let mut sum = Requests::default();
        for worker in &self.udp_workers {
            sum.connects += worker.connects;
            sum.announces += worker.announces;
            sum.scrapes += worker.scrapes;
            sum.errors_sent += worker.errors_sent;
            sum.dropped += worker.dropped;
        }
        sum
    }

    /// The OpenMetrics text exposition.
    #[must_use]
    pub fn to_openmetrics(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// The same figures as JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        let requests = |requests: &Requests| {
            serde_json::json!({
                "connects": requests.connects,
                "announces": requests.announces,
                "scrapes": requests.scrapes,
                "errors": requests.errors_sent,
                "dropped": requests.dropped,
            })
        };
        serde_json::json!({
            "uptime_seconds": self.uptime_seconds,
            "torrents": self.totals.torrents,
            "seeders": self.totals.seeders,
            "leechers": self.totals.leechers,
            "completed": self.totals.completed,
            "peers": {"ipv4": self.totals.peers_v4, "ipv6": self.totals.peers_v6},
            "udp": requests(&self.udp()),
            "http": requests(&self.http),
            "udp_workers": self.udp_workers.iter().map(requests).collect::<Vec<_>>(),
            "expiry": {"passes": self.expiry_passes, "peers_expired": self.expired_peers},
        })
        .to_string()
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: &[(&[(&str, &str)], u64)],
) -> Result<(), std::fmt::Error> {
    let sample = ConstCounter::new(0u64);
    let mut family = encoder.encode_descriptor(name, help, None, sample.metric_type())?;
    if let &[(labels, value)] = series
        && labels.is_empty()
    {
        return ConstCounter::new(value).encode(family);
    }
    for &(labels, value) in series {
        let labels: Vec<(&str, &str)> = labels.to_vec();
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: &[(&[(&str, &str)], u64)],
) -> Result<(), std::fmt::Error> {
    let sample = ConstGauge::new(0i64);
    let mut family = encoder.encode_descriptor(name, help, None, sample.metric_type())?;
    if let &[(labels, value)] = series
        && labels.is_empty()
    {
        return ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(family);
    }
    for &(labels, value) in series {
        let labels: Vec<(&str, &str)> = labels.to_vec();
        ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (udp, http) = (self.udp(), &self.http);
        counter(
            &mut encoder,
            "tracker_responses",
            "Requests answered, by protocol and kind (an error reply counts under error).",
            &[
                (&[("protocol", "udp"), ("kind", "connect")], udp.connects),
                (&[("protocol", "udp"), ("kind", "announce")], udp.announces),
                (&[("protocol", "udp"), ("kind", "scrape")], udp.scrapes),
                (&[("protocol", "udp"), ("kind", "error")], udp.errors_sent),
                (&[("protocol", "http"), ("kind", "announce")], http.announces),
                (&[("protocol", "http"), ("kind", "scrape")], http.scrapes),
                (&[("protocol", "http"), ("kind", "error")], http.errors_sent),
            ],
        )?;
        counter(
            &mut encoder,
            "tracker_dropped",
            "UDP datagrams left unanswered: unparseable, or with a connection ID the tracker did not issue.",
            &[(&[("protocol", "udp")], udp.dropped)],
        )?;
        let workers: Vec<(String, u64)> = self
            .udp_workers
            .iter()
            .enumerate()
            .map(|(index, worker)| (index.to_string(), worker.connects + worker.announces + worker.scrapes))
            .collect();
        let labels: Vec<[(&str, &str); 1]> = workers.iter().map(|(index, _)| [("worker", index.as_str())]).collect();
        let series: Vec<(&[(&str, &str)], u64)> =
            labels.iter().zip(&workers).map(|(labels, (_, value))| (&labels[..], *value)).collect();
        counter(&mut encoder, "tracker_worker_responses", "Requests each UDP worker answered: its load.", &series)?;
        gauge(&mut encoder, "tracker_torrents", "Torrents tracked.", &[(&[], self.totals.torrents)])?;
        gauge(&mut encoder, "tracker_seeders", "Seeders in all swarms.", &[(&[], self.totals.seeders)])?;
        gauge(&mut encoder, "tracker_leechers", "Leechers in all swarms.", &[(&[], self.totals.leechers)])?;
        gauge(
            &mut encoder,
            "tracker_peers",
            "Peers in all swarms, by address family.",
            &[(&[("family", "ipv4")], self.totals.peers_v4), (&[("family", "ipv6")], self.totals.peers_v6)],
        )?;
        gauge(
            &mut encoder,
            "tracker_completed",
            "Downloads completed in the swarms still tracked.",
            &[(&[], self.totals.completed)],
        )?;
        counter(
            &mut encoder,
            "tracker_expiry_passes",
            "Passes that dropped silent peers.",
            &[(&[], self.expiry_passes)],
        )?;
        counter(
            &mut encoder,
            "tracker_expired_peers",
            "Peers dropped for not re-announcing in time.",
            &[(&[], self.expired_peers)],
        )?;
        gauge(
            &mut encoder,
            "tracker_uptime_seconds",
            "Seconds since the tracker started.",
            &[(&[], self.uptime_seconds)],
        )?;
        Ok(())
    }
}
