//! Settings of a server's HTTP endpoints: ZooKeeper's Prometheus metrics and AdminServer.

/// zoo.cfg's metricsProvider.className that turns the Prometheus endpoint on.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// Where `/metrics` is served (metricsProvider.httpHost and httpPort).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Address to bind; ZooKeeper's default is `0.0.0.0`.
    pub host: String,
    /// Port; ZooKeeper's default is 7000.
    pub port: u16,
}

/// Where the AdminServer's commands are served (admin.serverAddress, serverPort, commandURL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminSettings {
    /// Address to bind; ZooKeeper's default is `0.0.0.0`.
    pub address: String,
    /// Port; ZooKeeper's default is 8080.
    pub port: u16,
    /// Path under which the commands answer; ZooKeeper's default is `/commands`.
    pub command_url: String,
}

impl MetricsSettings {
    /// `host:port`.
    pub fn bind_addr(&self) -> String {
        crate::model::join_host_port(&self.host, self.port)
    }
}

impl AdminSettings {
    /// `address:port`.
    pub fn bind_addr(&self) -> String {
        crate::model::join_host_port(&self.address, self.port)
    }
}
