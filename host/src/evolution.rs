//! Contract evolution: the one classifier that decides whether a new release's contract may
//! replace its hook's.
//!
//! Readers of a hook's feature rows rely on its contract, by column name. [`classify`] compares
//! the hook's contract with a proposed one and gives an [`Evolution`]:
//!
//! - [`Evolution::Identical`]: the same feature, cardinality and columns (name, type,
//!   nullability). Column order and descriptions may differ: rows are written by column name,
//!   and descriptions are documentation.
//! - [`Evolution::Additive`]: the same, plus new *nullable* columns. Existing readers keep
//!   working; the hook's contract grows.
//! - [`Evolution::Destructive`]: anything a reader could trip on, every change listed: a column
//!   removed, retyped, made nullable or made required; a new required column; the feature
//!   renamed; the cardinality changed.
//!
//! Publishing uses it (`host publish`); so does anything else that must decide compatibility.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::contract::{Cardinality, ColumnType, Contract};

/// How a proposed contract relates to the current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "evolution", rename_all = "snake_case")]
pub enum Evolution {
    /// Nothing a reader sees has changed.
    Identical,
    /// Only new nullable columns, named here in the proposed contract's order.
    Additive {
        /// The new columns.
        added: Vec<String>,
    },
    /// At least one change a reader could trip on; every change is listed.
    Destructive {
        /// Every change, feature-level first, then column by column.
        changes: Vec<ContractChange>,
    },
}

impl Evolution {
    /// Whether the proposed contract may replace the current one.
    pub fn is_accepted(&self) -> bool {
        !matches!(self, Evolution::Destructive { .. })
    }
}

/// One change between two contracts that breaks readers of the current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ContractChange {
    /// The feature has a new name.
    FeatureRenamed {
        /// The current name.
        from: String,
        /// The proposed name.
        to: String,
    },
    /// Rows per record changed (`one` ↔ `many`).
    CardinalityChanged {
        /// The current cardinality.
        from: Cardinality,
        /// The proposed cardinality.
        to: Cardinality,
    },
    /// A column is gone.
    ColumnRemoved {
        /// The column.
        column: String,
    },
    /// A column has a new type.
    ColumnRetyped {
        /// The column.
        column: String,
        /// The current type.
        from: ColumnType,
        /// The proposed type.
        to: ColumnType,
    },
    /// A required column may now be null.
    ColumnMadeNullable {
        /// The column.
        column: String,
    },
    /// A nullable column is now required (rows written before may hold nulls).
    ColumnMadeRequired {
        /// The column.
        column: String,
    },
    /// A new column that is required: rows written before do not have it.
    RequiredColumnAdded {
        /// The column.
        column: String,
        /// Its type.
        ty: ColumnType,
    },
}

impl fmt::Display for ContractChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContractChange::FeatureRenamed { from, to } => {
                write!(f, "feature renamed from `{from}` to `{to}`")
            }
            ContractChange::CardinalityChanged { from, to } => write!(
                f,
                "cardinality changed from `{}` to `{}`",
                cardinality_name(*from),
                cardinality_name(*to)
            ),
            ContractChange::ColumnRemoved { column } => write!(f, "column `{column}` removed"),
            ContractChange::ColumnRetyped { column, from, to } => write!(
                f,
                "column `{column}` retyped from {} to {}",
                from.name(),
                to.name()
            ),
            ContractChange::ColumnMadeNullable { column } => {
                write!(f, "column `{column}` changed from required to nullable")
            }
            ContractChange::ColumnMadeRequired { column } => {
                write!(f, "column `{column}` changed from nullable to required")
            }
            ContractChange::RequiredColumnAdded { column, ty } => write!(
                f,
                "required column `{column}` ({}) added; new columns must be nullable",
                ty.name()
            ),
        }
    }
}

fn cardinality_name(cardinality: Cardinality) -> &'static str {
    match cardinality {
        Cardinality::One => "one",
        Cardinality::Many => "many",
    }
}

/// Classifies `proposed` against `current`. Both are assumed well formed (unique column
/// names); see [`Contract::validate`].
///
/// ```
/// use hookhost::contract::{Cardinality, Column, ColumnType, Contract};
/// use hookhost::evolution::{classify, ContractChange, Evolution};
///
/// let column = |name: &str, ty, nullable| Column {
///     name: name.into(), ty, nullable, description: None,
/// };
/// let v1 = Contract {
///     feature: "text_stats".into(),
///     cardinality: Cardinality::One,
///     columns: vec![column("words", ColumnType::Integer, false)],
/// };
/// let mut v2 = v1.clone();
/// v2.columns.push(column("language", ColumnType::Text, true));
/// assert_eq!(classify(&v1, &v2), Evolution::Additive { added: vec!["language".into()] });
///
/// let mut v3 = v1.clone();
/// v3.columns[0].ty = ColumnType::Number;
/// assert_eq!(
///     classify(&v1, &v3),
///     Evolution::Destructive {
///         changes: vec![ContractChange::ColumnRetyped {
///             column: "words".into(),
///             from: ColumnType::Integer,
///             to: ColumnType::Number,
///         }],
///     },
/// );
/// ```
pub fn classify(current: &Contract, proposed: &Contract) -> Evolution {
    let mut changes = Vec::new();
    if current.feature != proposed.feature {
        changes.push(ContractChange::FeatureRenamed {
            from: current.feature.clone(),
            to: proposed.feature.clone(),
        });
    }
    if current.cardinality != proposed.cardinality {
        changes.push(ContractChange::CardinalityChanged {
            from: current.cardinality,
            to: proposed.cardinality,
        });
    }
    let proposed_by_name: HashMap<&str, _> = proposed
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    for column in &current.columns {
        let name = column.name.clone();
        match proposed_by_name.get(column.name.as_str()) {
            None => changes.push(ContractChange::ColumnRemoved { column: name }),
            Some(new) if new.ty != column.ty => changes.push(ContractChange::ColumnRetyped {
                column: name,
                from: column.ty,
                to: new.ty,
            }),
            Some(new) if new.nullable && !column.nullable => {
                changes.push(ContractChange::ColumnMadeNullable { column: name })
            }
            Some(new) if !new.nullable && column.nullable => {
                changes.push(ContractChange::ColumnMadeRequired { column: name })
            }
            Some(_) => {}
        }
    }
    let current_names: std::collections::HashSet<&str> =
        current.columns.iter().map(|c| c.name.as_str()).collect();
    let mut added = Vec::new();
    for column in &proposed.columns {
        if current_names.contains(column.name.as_str()) {
            continue;
        }
        if column.nullable {
            added.push(column.name.clone());
        } else {
            changes.push(ContractChange::RequiredColumnAdded {
                column: column.name.clone(),
                ty: column.ty,
            });
        }
    }
    if !changes.is_empty() {
        Evolution::Destructive { changes }
    } else if !added.is_empty() {
        Evolution::Additive { added }
    } else {
        Evolution::Identical
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::test_column as column;

    fn base() -> Contract {
        Contract {
            feature: "text_stats".into(),
            cardinality: Cardinality::One,
            columns: vec![
                column("words", ColumnType::Integer, false),
                column("mean", ColumnType::Number, false),
                column("language", ColumnType::Text, true),
            ],
        }
    }

    fn changes(proposed: &Contract) -> Vec<ContractChange> {
        match classify(&base(), proposed) {
            Evolution::Destructive { changes } => changes,
            other => panic!("expected destructive, got {other:?}"),
        }
    }

    #[test]
    fn the_same_contract_is_identical() {
        assert_eq!(classify(&base(), &base()), Evolution::Identical);
    }

    #[test]
    fn order_and_descriptions_do_not_matter() {
        let mut proposed = base();
        proposed.columns.reverse();
        proposed.columns[0].description = Some("now documented".into());
        assert_eq!(classify(&base(), &proposed), Evolution::Identical);
    }

    #[test]
    fn new_nullable_columns_are_additive() {
        let mut proposed = base();
        proposed
            .columns
            .insert(0, column("sentences", ColumnType::Integer, true));
        proposed
            .columns
            .push(column("embedding", ColumnType::FloatVector, true));
        let evolution = classify(&base(), &proposed);
        assert!(evolution.is_accepted());
        assert_eq!(
            evolution,
            Evolution::Additive {
                added: vec!["sentences".into(), "embedding".into()]
            }
        );
    }

    #[test]
    fn a_removed_column_is_destructive() {
        let mut proposed = base();
        proposed.columns.remove(1);
        assert_eq!(
            changes(&proposed),
            [ContractChange::ColumnRemoved {
                column: "mean".into()
            }]
        );
    }

    #[test]
    fn a_removed_nullable_column_is_destructive_too() {
        let mut proposed = base();
        proposed.columns.remove(2);
        assert_eq!(
            changes(&proposed),
            [ContractChange::ColumnRemoved {
                column: "language".into()
            }]
        );
    }

    #[test]
    fn a_retyped_column_is_destructive() {
        let mut proposed = base();
        proposed.columns[0].ty = ColumnType::Number;
        assert_eq!(
            changes(&proposed),
            [ContractChange::ColumnRetyped {
                column: "words".into(),
                from: ColumnType::Integer,
                to: ColumnType::Number
            }]
        );
    }

    #[test]
    fn nullability_changes_either_way_are_destructive() {
        let mut proposed = base();
        proposed.columns[0].nullable = true;
        proposed.columns[2].nullable = false;
        assert_eq!(
            changes(&proposed),
            [
                ContractChange::ColumnMadeNullable {
                    column: "words".into()
                },
                ContractChange::ColumnMadeRequired {
                    column: "language".into()
                },
            ]
        );
    }

    #[test]
    fn a_new_required_column_is_destructive() {
        let mut proposed = base();
        proposed
            .columns
            .push(column("sentences", ColumnType::Integer, false));
        assert_eq!(
            changes(&proposed),
            [ContractChange::RequiredColumnAdded {
                column: "sentences".into(),
                ty: ColumnType::Integer
            }]
        );
    }

    #[test]
    fn a_cardinality_change_is_destructive() {
        let mut proposed = base();
        proposed.cardinality = Cardinality::Many;
        assert_eq!(
            changes(&proposed),
            [ContractChange::CardinalityChanged {
                from: Cardinality::One,
                to: Cardinality::Many
            }]
        );
    }

    #[test]
    fn a_renamed_feature_is_destructive() {
        let mut proposed = base();
        proposed.feature = "text_statistics".into();
        assert_eq!(
            changes(&proposed),
            [ContractChange::FeatureRenamed {
                from: "text_stats".into(),
                to: "text_statistics".into()
            }]
        );
    }

    #[test]
    fn every_change_is_listed_and_additions_do_not_hide_them() {
        let mut proposed = base();
        proposed.cardinality = Cardinality::Many;
        proposed.columns.remove(0); // words
        proposed.columns[0].ty = ColumnType::Text; // mean
        proposed
            .columns
            .push(column("extra", ColumnType::Boolean, true));
        proposed
            .columns
            .push(column("needed", ColumnType::Date, false));
        let listed: Vec<String> = changes(&proposed).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            listed,
            [
                "cardinality changed from `one` to `many`",
                "column `words` removed",
                "column `mean` retyped from number to text",
                "required column `needed` (date) added; new columns must be nullable",
            ]
        );
    }
}
