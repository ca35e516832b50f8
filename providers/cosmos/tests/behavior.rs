//! The behavior suite against the Cosmos DB fixture
//! (`WASIKV_TEST_COSMOS_ENDPOINT`, default `https://127.0.0.1:18081/`, started
//! by `scripts/services.sh`), for both bucket shapes: a container per bucket
//! (`cosmos::`) and a logical partition per bucket in a shared container
//! (`cosmos-partition::`). An unreachable fixture fails the suite.

use wasikv_core::suite::{Level, run_trials, trials};
use wasikv_cosmos::testing::opener;

fn main() -> std::process::ExitCode {
    run_trials(
        trials("cosmos", Level::Provider, opener(false)).and_then(|mut all| {
            all.extend(trials("cosmos-partition", Level::Provider, opener(true))?);
            Ok(all)
        }),
    )
}
