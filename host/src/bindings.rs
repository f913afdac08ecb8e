//! Host-side bindings generated from `wit/`, the single source of the hook interface.

wasmtime::component::bindgen!({
    world: "hook",
    path: "../wit",
});

pub use hookhost::hook::types::{Cardinality, Column, ColumnType, GuestError, Value};
