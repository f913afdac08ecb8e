//! Host-side bindings generated from `wit/`, the single source of the hook interface.

wasmtime::component::bindgen!({
    world: "hook",
    path: "../wit",
});

pub use self::hookhost::hook::types::{Cardinality, Column, ColumnType, GuestError, Value};
