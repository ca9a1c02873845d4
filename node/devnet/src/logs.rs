//! Where the devnet's log lines go. Its nodes run in this process, each
//! started inside a `node{n=..}` span that its tasks keep (see
//! `dagger_node::task`): a line logged in node `n`'s span goes to
//! `<data dir>/node<n>/node.log`; the console gets the devnet's own lines
//! and, from the nodes, warnings and errors only (prefixed with the node).
//! `RUST_LOG` still chooses the levels, of the files and the console alike.

use std::{
    fs::File,
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
};

use tracing::{span, Subscriber};
use tracing_subscriber::{
    filter::{dynamic_filter_fn, EnvFilter, FilterExt, LevelFilter},
    fmt::MakeWriter,
    layer::{Context, SubscriberExt},
    registry::LookupSpan,
    util::SubscriberInitExt,
    Layer,
};

/// The span a devnet node runs in.
pub fn node_span(n: usize) -> tracing::Span {
    tracing::info_span!("node", n)
}

/// Which node a span belongs to, kept in its extensions.
struct NodeIndex(usize);

/// Records the index of every `node` span.
struct TagNodes;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TagNodes {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "node" {
            return;
        }
        struct Visit(Option<usize>);
        impl tracing::field::Visit for Visit {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "n" {
                    self.0 = Some(value as usize);
                }
            }
            fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
                if field.name() == "n" {
                    self.0 = usize::try_from(value).ok();
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut visit = Visit(None);
        attrs.record(&mut visit);
        if let (Some(n), Some(span)) = (visit.0, ctx.span(id)) {
            span.extensions_mut().insert(NodeIndex(n));
        }
    }
}

/// The node whose span the current event is in, if any.
fn node_of<S: Subscriber + for<'a> LookupSpan<'a>>(ctx: &Context<'_, S>) -> Option<usize> {
    let current = ctx.lookup_current()?;
    current
        .scope()
        .find_map(|span| span.extensions().get::<NodeIndex>().map(|n| n.0))
}

/// Appends to one node's log file.
#[derive(Clone)]
struct NodeFile(Arc<Mutex<File>>);

struct Locked<'a>(std::sync::MutexGuard<'a, File>);

impl Write for Locked<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for NodeFile {
    type Writer = Locked<'a>;
    fn make_writer(&'a self) -> Locked<'a> {
        Locked(self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn levels(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// Logging for `dagger-devnet` (the network itself): node lines to a file
/// per node under `data_dir`, the rest to the console.
pub fn init_devnet(data_dir: &Path, nodes: usize) -> std::io::Result<()> {
    use std::io::IsTerminal;
    let mut files = Vec::new();
    for n in 0..nodes {
        let dir = data_dir.join(format!("node{n}"));
        std::fs::create_dir_all(&dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))?;
        let writer = NodeFile(Arc::new(Mutex::new(file)));
        // Spans pass (an event finds its node through them); events only
        // in node `n`'s span.
        let mine = dynamic_filter_fn(move |meta, ctx| meta.is_span() || node_of(ctx) == Some(n));
        files.push(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(levels("info,surfpool=off").and(mine))
                .boxed(),
        );
    }
    // The console: the devnet's own story; from nodes only what went wrong.
    let quiet_nodes = dynamic_filter_fn(|meta, ctx| {
        meta.is_span() || node_of(ctx).is_none() || *meta.level() <= LevelFilter::WARN
    });
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(
            levels("off,dagger_node=warn,dagger_devnet=info,dagger_client=warn").and(quiet_nodes),
        );
    tracing_subscriber::registry()
        .with(TagNodes)
        .with(files)
        .with(console)
        .init();
    Ok(())
}
