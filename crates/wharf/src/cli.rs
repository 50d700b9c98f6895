//! The command line: every verb and flag, with clap.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// wharf: run containers behind egress sidecars, locally, over your Docker daemon.
#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    version,
    about,
    after_help = "Exit codes: 0 success; 1 a failed operation; 64 bad arguments or configuration; \
                  `wharf exec` exits with the command's own code."
)]
pub struct Cli {
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// The daemon's address for client verbs: unix:/path or http://host:port
    /// [default: $WHARF_URL, else the default socket].
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// Bearer token for a TCP daemon [default: $WHARF_TOKEN].
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve(ServeArgs),
    /// Start a container.
    Start(StartArgs),
    /// Show one container.
    Status(IdArg),
    /// List this daemon's containers.
    Ps,
    /// Wait for a container to stop; prints its exit code.
    Wait(IdArg),
    /// Destroy a container (and its sidecar).
    Destroy(IdArg),
    /// Send a signal (number 1-64 or a name like TERM).
    Signal(SignalArgs),
    /// Run a command in a container to its end.
    Exec(ExecArgs),
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Forward a local TCP port to a container port.
    PortForward(PortForwardArgs),
    /// Show the daemon's health.
    Health,
    /// List a container's egress mappings, or add one:
    /// `wharf egress ID http example.com http://127.0.0.1:9000`.
    Egress(EgressArgs),
    /// Show a container's egress log: every connection and DNS answer, and what decided it.
    EgressLog(EgressLogArgs),
    /// Explain what would happen to a connection from a container, without making one.
    Why(WhyArgs),
    /// Remove Docker objects that belong to no live wharf engine.
    Gc(GcArgs),
    /// Build or inspect wharf's images.
    Images {
        /// The images verb.
        #[command(subcommand)]
        command: ImagesCommand,
    },
    /// Build the images, start a test-app container, fetch / and run an exec through the
    /// engine, then destroy it and leave nothing behind.
    Demo(DemoArgs),
    /// Measure what the sidecar and the engine cost, against direct connections.
    Bench {
        /// The bench verb.
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Serve or query a module fallback service (workerd's `moduleFallback`, both versions).
    Fallback {
        /// The fallback verb.
        #[command(subcommand)]
        command: FallbackCommand,
    },
}

/// `wharf bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Latency (p50/p99) and bulk throughput of the same requests made directly, through the
    /// sidecar (egress pass-through; ingress by the ports upgrade and the HTTP proxy) and
    /// through an egress handler, each as a ratio to direct.
    Egress(BenchEgressArgs),
    /// Module fallback resolutions through a new connection per request (`naive`), one
    /// connection behind a single slot (`single`) and the pooled client (`wharf`), against the
    /// reference server: connections opened, TIME_WAIT left, resolutions/s, p50/p99/p99.9.
    Fallback(BenchFallbackArgs),
    /// Container lifecycles (start, probe until `Hello World!`, destroy) of N ids at once, in
    /// three modes on one daemon (`naive`: a fresh sidecar per start; `warm`: kept across
    /// destroy; `wharf`: kept plus the warm pool) and bare `docker create` + `start` as the
    /// floor: start p50/p99/max, the sidecar and app phases, failures against a 10 s budget,
    /// the warm share and lifecycles/s.
    Lifecycle(BenchLifecycleArgs),
}

/// `wharf bench lifecycle`.
#[derive(Debug, Args)]
pub struct BenchLifecycleArgs {
    /// Ids cycling at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub ids: u16,
    /// Cycles per id.
    #[arg(long, value_name = "M", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub cycles: u16,
    /// Which modes to run, in order: bare, naive, warm, wharf.
    #[arg(long, value_delimiter = ',', default_value = "bare,naive,warm,wharf")]
    pub modes: Vec<String>,
    /// Docker and image inputs.
    #[command(flatten)]
    pub docker: DockerArgs,
}

/// `wharf bench egress`.
#[derive(Debug, Args)]
pub struct BenchEgressArgs {
    /// Requests per path on kept-alive connections, split over the rounds; runs with a new
    /// connection per request make a quarter as many.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub requests: u32,
    /// Requests in flight at once, each on its own connection.
    #[arg(long, value_name = "C", default_value_t = 1)]
    pub concurrency: u32,
    /// Bytes per bulk transfer, e.g. 268435456, 256M or 1G.
    #[arg(long, value_name = "BYTES", default_value = "256M", value_parser = parse_size)]
    pub bulk_bytes: u64,
    /// Rounds: every path runs once per round, in turn, so that drift in the machine's load
    /// falls on all paths alike. A warm-up round comes first and is not counted.
    #[arg(long, value_name = "R", default_value_t = 5)]
    pub rounds: u32,
    /// Docker and image inputs.
    #[command(flatten)]
    pub docker: DockerArgs,
}

/// A byte count: digits with an optional binary suffix `K`, `M` or `G` (256M is 256 MiB).
pub(crate) fn parse_size(raw: &str) -> Result<u64, String> {
    let (digits, unit) = match raw.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&raw.trim()[..i], c.to_ascii_uppercase()),
        _ => (raw.trim(), ' '),
    };
    let shift = match unit {
        ' ' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(format!("{raw:?}: the suffix must be K, M or G")),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{raw:?} is not a byte count like 256M"))?;
    match n.checked_mul(1 << shift) {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(format!("{raw:?} must be between 1 byte and 2^64 - 1 bytes")),
    }
}

/// `wharf images …`.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build wharf/sidecar:VERSION and wharf/testapp:latest offline.
    Build(DockerArgs),
}

/// Docker connection and image inputs.
#[derive(Debug, Args, Clone)]
pub struct DockerArgs {
    /// Docker endpoint, e.g. unix:///var/run/docker.sock [default: $DOCKER_HOST, else that socket].
    #[arg(long, value_name = "HOST")]
    pub docker_host: Option<String>,
    /// Debian's busybox-static binary, put in the images.
    #[arg(long, value_name = "PATH", default_value = crate::artifacts::DEFAULT_BUSYBOX)]
    pub busybox: PathBuf,
}

/// `wharf serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on TCP instead of the unix socket, e.g. 127.0.0.1:0.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The unix socket [default: $WHARF_SOCKET, $XDG_RUNTIME_DIR/wharf.sock or /run/wharf/wharf.sock].
    #[arg(long, value_name = "PATH", conflicts_with = "listen")]
    pub socket: Option<PathBuf>,
    /// Engine instance name; it owns the containers it creates.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// State directory root [default: $WHARF_STATE_DIR, $XDG_RUNTIME_DIR/wharf or /run/wharf].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Upstream DNS resolver for sidecars (repeatable) [default: Docker's].
    #[arg(long = "upstream-dns", value_name = "IP")]
    pub upstream_dns: Vec<IpAddr>,
    /// Leave containers running at exit, for the next `wharf serve` to adopt.
    #[arg(long)]
    pub keep_containers: bool,
    /// The fewest ready sidecars the warm pool keeps, so first starts are warm too.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub pool_min: usize,
    /// The most the warm pool grows to under demand; 0 turns the pool off.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub pool_max: usize,
    /// Seconds a sidecar stays up, after its app is gone or unclaimed in the pool; 0 keeps none.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub warm_ttl: u64,
    /// Docker and image inputs.
    #[command(flatten)]
    pub docker: DockerArgs,
}

/// A container id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The container id: 1-128 characters of [A-Za-z0-9_.-].
    pub id: String,
}

/// `wharf start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The container id.
    pub id: String,
    /// The image.
    #[arg(long)]
    pub image: String,
    /// NAME=VALUE (repeatable).
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// name=value (repeatable).
    #[arg(long = "label", short = 'l', value_name = "NAME=VALUE")]
    pub labels: Vec<String>,
    /// Let unmatched egress reach the internet.
    #[arg(long)]
    pub internet: bool,
    /// Stop the container after this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub hard_timeout_ms: Option<i64>,
    /// CPU limit, e.g. 0.5.
    #[arg(long)]
    pub vcpu: Option<f64>,
    /// Memory limit in MiB.
    #[arg(long, value_name = "MIB")]
    pub memory_mib: Option<f64>,
    /// Replaces the image's CMD: everything after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub entrypoint: Vec<String>,
}

/// `wharf signal`.
#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The container id.
    pub id: String,
    /// 1-64 or a name: TERM, SIGKILL, RTMIN+2, …
    pub signal: String,
}

/// `wharf exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The container id.
    pub id: String,
    /// NAME=VALUE (repeatable).
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Working directory (absolute).
    #[arg(long, short = 'w')]
    pub cwd: Option<String>,
    /// User: a name, a uid, or uid:gid.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Put stderr into stdout.
    #[arg(long)]
    pub combined: bool,
    /// The command, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// `wharf logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The container id.
    pub id: String,
    /// Keep printing new output.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `wharf port-forward`.
#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// The container id.
    pub id: String,
    /// `[LOCAL:]REMOTE`, e.g. 8080 or 9000:8080 (LOCAL 0 picks a free port).
    pub ports: String,
    /// Local address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
}

/// `wharf egress`.
#[derive(Debug, Args)]
pub struct EgressArgs {
    /// The container id.
    pub id: String,
    /// `http`, `https` or `tcp` (with HOST_PORT and TARGET: add a mapping).
    pub protocol: Option<String>,
    /// `<ip|cidr|hostnameGlob>[:port]`, e.g. `*.example.com` or `10.0.0.0/8:5432`.
    pub host_port: Option<String>,
    /// An http:// base URL on the host (http, https), or HOST:PORT (tcp).
    pub target: Option<String>,
}

/// `wharf egress-log`.
#[derive(Debug, Args)]
pub struct EgressLogArgs {
    /// The container id.
    pub id: String,
    /// Keep printing new entries.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `wharf why`.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The container id.
    pub id: String,
    /// `host[:port]` the app would connect to.
    pub destination: String,
    /// `http`, `https` or `tcp` [default: https on 443, http on 80, else tcp].
    #[arg(long)]
    pub protocol: Option<String>,
}

/// `wharf gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only this engine's objects.
    #[arg(long)]
    pub engine: Option<String>,
    /// Show what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Docker endpoint [default: $DOCKER_HOST, else /var/run/docker.sock].
    #[arg(long, value_name = "HOST")]
    pub docker_host: Option<String>,
}

/// `wharf demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Docker and image inputs.
    #[command(flatten)]
    pub docker: DockerArgs,
}

/// `wharf fallback …`.
#[derive(Debug, Subcommand)]
pub enum FallbackCommand {
    /// Serve the modules under a directory to workerd's module fallback (V1 and V2), resolving
    /// like Node and answering 301 aliases.
    Serve(FallbackServeArgs),
    /// Ask a fallback service once and print the answer.
    Resolve(FallbackResolveArgs),
}

/// `wharf fallback serve`.
#[derive(Debug, Args)]
pub struct FallbackServeArgs {
    /// The directory whose files are the modules.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// The address to listen on, e.g. 127.0.0.1:8999 (port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Close connections idle this long, in milliseconds [default: never].
    #[arg(long, value_name = "MS")]
    pub idle_close: Option<u64>,
}

/// `wharf fallback resolve`.
#[derive(Debug, Args)]
pub struct FallbackResolveArgs {
    /// The fallback service, e.g. 127.0.0.1:8999.
    #[arg(long, value_name = "ADDR")]
    pub server: SocketAddr,
    /// The specifier: an absolute path (V1, e.g. /lib/dep) or a URL (with --v2).
    pub specifier: String,
    /// The importing module [default: /main.js, or file:///bundle/main.js with --v2].
    #[arg(long)]
    pub referrer: Option<String>,
    /// The specifier as written in the source, e.g. ./lib/dep or a package name.
    #[arg(long, value_name = "RAW")]
    pub raw: Option<String>,
    /// Ask as a CommonJS `require` rather than an `import`.
    #[arg(long)]
    pub require: bool,
    /// Speak V2 (POST with JSON) rather than V1.
    #[arg(long)]
    pub v2: bool,
    /// Print the redirect instead of following it.
    #[arg(long)]
    pub no_follow: bool,
}

/// `wharf bench fallback`.
#[derive(Debug, Args)]
pub struct BenchFallbackArgs {
    /// Resolutions per mode and concurrency; half are answered with a 301.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub requests: u32,
    /// Concurrent callers (threads), a comma-separated list.
    #[arg(long, value_name = "C,…", value_delimiter = ',', default_values_t = [1, 8, 64])]
    pub concurrency: Vec<u32>,
    /// Modes to run, in order, a comma-separated list of wharf, wharf-async, single and naive.
    #[arg(long, value_name = "MODE,…", value_delimiter = ',', default_values_t = ["wharf".to_owned(), "single".to_owned(), "naive".to_owned()])]
    pub modes: Vec<String>,
    /// The pooled client's connection limit.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub pool: u32,
    /// Make the server close connections idle this long, in milliseconds, to exercise stale
    /// reuse.
    #[arg(long, value_name = "MS")]
    pub server_idle_close: Option<u64>,
    /// Repeat the whole run this many times back to back, each with new clients, reporting
    /// errors and TIME_WAIT after each.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub runs: u32,
}
