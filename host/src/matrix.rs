//! The capability matrix of the compiled-in providers, as guests see it
//! (after the host's emulation, with the default `limits`). `wasikv providers` prints it and
//! `docs/capabilities.md` is generated from it (a test checks the file).

use wasikv_core::Capabilities;

use crate::emulate::emulated_capabilities;
use crate::registry;

/// The matrix as markdown: one column per compiled-in provider.
pub fn markdown() -> String {
    let providers = registry::compiled();
    let max_value = crate::config::Limits::default().max_value_bytes;
    let caps: Vec<(String, Capabilities)> = providers
        .iter()
        .flat_map(|p| {
            let variants = p
                .capability_variants()
                .into_iter()
                .map(|(label, caps)| (format!("{} ({label})", p.name()), caps));
            std::iter::once((p.name().to_string(), p.capabilities())).chain(variants)
        })
        .map(|(name, caps)| (name, emulated_capabilities(&caps, max_value)))
        .collect();
    let columns: Vec<(&str, &Capabilities)> = caps.iter().map(|(n, c)| (n.as_str(), c)).collect();
    let mut out = Capabilities::markdown_table(&columns);
    let missing: Vec<String> = registry::KNOWN
        .iter()
        .filter(|(name, _)| !providers.iter().any(|p| p.name() == *name))
        .map(|(name, feature)| format!("{name} (feature `{}`)", feature.unwrap_or(name)))
        .collect();
    if !missing.is_empty() {
        out.push_str(&format!("\nNot compiled in: {}.\n", missing.join(", ")));
    }
    out
}
