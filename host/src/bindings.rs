//! Host-side bindings generated from `wit/`, the single source of the hook interface.

//!
//! The parameters of the guest's exports borrow (`Record<'_>` holds `&str`s): a call lowers
//! each record straight from the host's own [`GuestRecord`](crate::input::GuestRecord), with
//! no copy of its id and metadata per call (issue 15).

wasmtime::component::bindgen!({
    world: "hook",
    path: "../wit",
    ownership: Borrowing {
        duplicate_if_necessary: false
    },
});

pub use self::hookhost::hook::types::{Cardinality, Column, ColumnType, GuestError, Value};
