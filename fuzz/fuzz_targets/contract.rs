//! Contract validation, row checking and the evolution classifier, on contracts built from
//! fuzz bytes (from a small name alphabet, so columns collide and overlap often).
//!
//! Checked: nothing panics; the digest is a function of the contract; a contract classifies as
//! identical to itself and to any reordering of its columns; for valid contracts, `classify`
//! says identical exactly when feature, cardinality and the column set agree, "additive" only
//! for new nullable columns (and the way back is destructive), and "destructive" always names
//! a change; `check_rows` accepts only rows of the right arity, and its byte count is the size
//! of the JSON it renders.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Result, Unstructured};
use hookhost::bindings::Value;
use hookhost::contract::{Cardinality, Column, ColumnType, Contract};
use hookhost::evolution::{Evolution, classify};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &["a", "b", "c", "id", "n", "x_1", "", "A", "9", "long_name_"];
const TYPES: &[ColumnType] = &[
    ColumnType::Text,
    ColumnType::Integer,
    ColumnType::Number,
    ColumnType::Boolean,
    ColumnType::Timestamp,
    ColumnType::Date,
    ColumnType::Uuid,
    ColumnType::Json,
    ColumnType::FloatVector,
];

fn contract(u: &mut Unstructured<'_>) -> Result<Contract> {
    let feature = if u.ratio(1, 8)? {
        String::arbitrary(u)?
    } else {
        u.choose(NAMES)?.to_string()
    };
    let cardinality = if bool::arbitrary(u)? {
        Cardinality::One
    } else {
        Cardinality::Many
    };
    let count = u.int_in_range(0..=6)?;
    let mut columns = Vec::with_capacity(count);
    for _ in 0..count {
        columns.push(Column {
            name: u.choose(NAMES)?.to_string(),
            ty: *u.choose(TYPES)?,
            nullable: bool::arbitrary(u)?,
            description: Option::<String>::arbitrary(u)?,
        });
    }
    Ok(Contract {
        feature,
        cardinality,
        columns,
    })
}

fn value(u: &mut Unstructured<'_>) -> Result<Value> {
    const SAMPLES: &[&str] = &[
        "2024-05-01T12:00:00Z",
        "2024-02-30",
        "2024-05-01",
        "67e55044-10b1-426f-9247-bb680e5fe0c8",
        "67E55044-10B1-426F-9247-BB680E5FE0C8",
        "{\"k\":[1,2]}",
        "[1,",
        "",
    ];
    let text = |u: &mut Unstructured<'_>| -> Result<String> {
        if bool::arbitrary(u)? {
            Ok(u.choose(SAMPLES)?.to_string())
        } else {
            String::arbitrary(u)
        }
    };
    Ok(match u.int_in_range(0..=9)? {
        0 => Value::Null,
        1 => Value::Text(text(u)?),
        2 => Value::Integer(i64::arbitrary(u)?),
        3 => Value::Number(f64::arbitrary(u)?),
        4 => Value::Boolean(bool::arbitrary(u)?),
        5 => Value::Timestamp(text(u)?),
        6 => Value::Date(text(u)?),
        7 => Value::Uuid(text(u)?),
        8 => Value::Json(text(u)?),
        _ => Value::FloatVector(Vec::<f64>::arbitrary(u)?),
    })
}

fn column_set(contract: &Contract) -> BTreeSet<(String, &'static str, bool)> {
    contract
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.name(), c.nullable))
        .collect()
}

fn check(u: &mut Unstructured<'_>) -> Result<()> {
    let current = contract(u)?;
    let proposed = if u.ratio(1, 4)? {
        // A near copy: reordered, with a column added or changed, more often than chance.
        let mut near = current.clone();
        near.columns.reverse();
        if bool::arbitrary(u)? {
            near.columns.push(Column {
                name: u.choose(NAMES)?.to_string(),
                ty: *u.choose(TYPES)?,
                nullable: bool::arbitrary(u)?,
                description: None,
            });
        }
        near
    } else {
        contract(u)?
    };

    assert_eq!(current.digest(), current.clone().digest());
    let current_valid = current.validate().is_ok();
    let proposed_valid = proposed.validate().is_ok();

    // The classifier never panics, whatever it is given.
    let verdict = classify(&current, &proposed);
    let mut reordered = current.clone();
    reordered.columns.reverse();
    if current_valid {
        assert_eq!(classify(&current, &current), Evolution::Identical);
        assert_eq!(classify(&current, &reordered), Evolution::Identical);
    }

    if current_valid && proposed_valid {
        let same_shape =
            current.feature == proposed.feature && current.cardinality == proposed.cardinality;
        let (before, after) = (column_set(&current), column_set(&proposed));
        match &verdict {
            Evolution::Identical => assert!(same_shape && before == after),
            Evolution::Additive { added } => {
                assert!(same_shape && !added.is_empty());
                assert!(before.is_subset(&after));
                let new: BTreeSet<_> = after.difference(&before).collect();
                assert_eq!(new.len(), added.len());
                assert!(
                    new.iter()
                        .all(|(name, _, nullable)| *nullable && added.contains(name))
                );
                assert!(matches!(
                    classify(&proposed, &current),
                    Evolution::Destructive { .. }
                ));
            }
            Evolution::Destructive { changes } => {
                assert!(!changes.is_empty());
                assert!(!(same_shape && before == after));
                for change in changes {
                    assert!(!change.to_string().is_empty());
                }
            }
        }
        assert_eq!(
            verdict == Evolution::Identical,
            classify(&proposed, &current) == Evolution::Identical
        );
    }

    // Rows against the current contract.
    let row_count = u.int_in_range(0..=3)?;
    let mut rows = Vec::with_capacity(row_count);
    for _ in 0..row_count {
        let width = if bool::arbitrary(u)? {
            current.columns.len()
        } else {
            u.int_in_range(0..=7)?
        };
        let mut row = Vec::with_capacity(width);
        for _ in 0..width {
            row.push(value(u)?);
        }
        rows.push(row);
    }
    let widths: Vec<usize> = rows.iter().map(Vec::len).collect();
    if let Ok(checked) = current.check_rows(rows) {
        if current.cardinality == Cardinality::One {
            assert_eq!(checked.rows.len(), 1);
        }
        assert_eq!(checked.rows.len(), widths.len());
        let mut bytes = 0;
        for row in &checked.rows {
            assert_eq!(row.len(), current.columns.len());
            for (column, value) in current.columns.iter().zip(row) {
                assert!(column.nullable || !value.is_null());
                bytes += serde_json::to_vec(value)
                    .expect("JSON values serialize")
                    .len() as u64;
            }
        }
        assert_eq!(checked.json_bytes, bytes);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
