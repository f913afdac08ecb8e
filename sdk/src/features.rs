//! Feature rows: the [`Features`] trait a row struct derives, and the column types it may hold.

use crate::{Column, ColumnType, Contract, Value};

/// A feature row: a struct whose fields are the hook's columns, in order.
///
/// Derive it with `#[derive(Features)]`; the contract is read from the struct:
///
/// - `#[features(name = "...", cardinality = "one" | "many")]` on the struct (required) gives the
///   feature name and how many rows a passed record has;
/// - every field is a column named after the field (or `#[column(rename = "...")]`), typed by
///   its Rust type (see [`FeatureColumn`]), nullable when it is an `Option`, and described by its
///   doc comment.
///
/// ```
/// use hookhost_sdk::{Cardinality, ColumnType, Features, Json, Value};
///
/// /// One detected language per record.
/// #[derive(Features)]
/// #[features(name = "language", cardinality = "one")]
/// struct Language {
///     /// ISO 639-1 code.
///     code: String,
///     #[column(rename = "confidence_pct")]
///     confidence: Option<f64>,
///     details: Json,
/// }
///
/// let contract = Language::contract();
/// assert_eq!(contract.feature, "language");
/// assert_eq!(contract.cardinality, Cardinality::One);
/// assert_eq!(contract.columns[1].name, "confidence_pct");
/// assert_eq!(contract.columns[1].ty, ColumnType::Number);
/// assert!(contract.columns[1].nullable);
/// assert_eq!(contract.columns[0].description.as_deref(), Some("ISO 639-1 code."));
///
/// let row = Language { code: "en".into(), confidence: None, details: Json::new("{}") };
/// assert_eq!(
///     row.into_row(),
///     [Value::Text("en".into()), Value::Null, Value::Json("{}".into())]
/// );
/// ```
///
/// A field type that is not a [`FeatureColumn`] is a compile error at that field
/// (`` `u64` cannot be a feature column ``), and so is a struct without `#[features(...)]`:
///
/// ```compile_fail
/// #[derive(hookhost_sdk::Features)]
/// #[features(name = "sizes", cardinality = "many")]
/// struct Sizes {
///     bytes: u64,
/// }
/// ```
///
/// ```compile_fail
/// #[derive(hookhost_sdk::Features)]
/// struct Sizes {
///     bytes: i64,
/// }
/// ```
pub trait Features {
    /// The hook's contract: feature name, cardinality and columns.
    fn contract() -> Contract;

    /// The row's values, in column order.
    fn into_row(self) -> Vec<Value>;
}

/// A Rust type that can be a feature column: it fixes the column's type and nullability and
/// converts a field into its WIT [`Value`].
///
/// Implemented for `String` (text), `i64`/`i32`/`u32` (integer), `f64`/`f32` (number), `bool`
/// (boolean), `Vec<f64>` (float-vector), [`Timestamp`], [`Date`], [`Uuid`], [`Json`], and
/// `Option<T>` of any of them (a nullable column; `None` is null).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a feature column",
    label = "unsupported column type",
    note = "column types are String, i64, i32, u32, f64, f32, bool, Vec<f64>, Timestamp, Date, Uuid, Json, or an Option of one of them"
)]
pub trait FeatureColumn {
    /// The column's type.
    const TYPE: ColumnType;
    /// Whether the column may hold null.
    const NULLABLE: bool = false;

    /// The field's value.
    fn into_value(self) -> Value;
}

impl<T: FeatureColumn> FeatureColumn for Option<T> {
    const TYPE: ColumnType = T::TYPE;
    const NULLABLE: bool = true;

    fn into_value(self) -> Value {
        self.map_or(Value::Null, T::into_value)
    }
}

macro_rules! feature_columns {
    ($($ty:ty => $column:ident($value:ident => $into:expr)),* $(,)?) => {$(
        impl FeatureColumn for $ty {
            const TYPE: ColumnType = ColumnType::$column;

            fn into_value(self) -> Value {
                let $value = self;
                Value::$column($into)
            }
        }
    )*};
}

feature_columns! {
    String => Text(v => v),
    i64 => Integer(v => v),
    i32 => Integer(v => v.into()),
    u32 => Integer(v => v.into()),
    f64 => Number(v => v),
    f32 => Number(v => v.into()),
    bool => Boolean(v => v),
    Vec<f64> => FloatVector(v => v),
}

/// Text-valued column types whose format the host checks; the SDK only carries the text.
macro_rules! text_columns {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// The text is not checked here: the host checks it, and a malformed value is a contract
        /// violation for the record.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps `text`, which should already be in the column's format.
            pub fn new(text: impl Into<String>) -> Self {
                Self(text.into())
            }
        }

        impl FeatureColumn for $name {
            const TYPE: ColumnType = ColumnType::$name;

            fn into_value(self) -> Value {
                Value::$name(self.0)
            }
        }
    )*};
}

text_columns! {
    /// A `timestamp` column value: RFC 3339 with an offset, e.g. `2024-05-01T12:00:00Z`.
    Timestamp;
    /// A `date` column value: `YYYY-MM-DD`.
    Date;
    /// A `uuid` column value, hyphenated: `67e55044-10b1-426f-9247-bb680e5fe0c8`.
    Uuid;
    /// A `json` column value: JSON text, usually an array or object.
    Json;
}

impl Json {
    /// Serialises a JSON value.
    ///
    /// ```
    /// let json = hookhost_sdk::Json::from_value(&serde_json::json!({"tags": ["a", "b"]}));
    /// assert_eq!(json.0, r#"{"tags":["a","b"]}"#);
    /// ```
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(value.to_string())
    }
}

/// The column a field of type `T` becomes (used by the derive).
pub fn column<T: FeatureColumn>(name: &str, description: Option<&str>) -> Column {
    Column {
        name: name.to_owned(),
        ty: T::TYPE,
        nullable: T::NULLABLE,
        description: description.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cardinality;

    /// Every supported column type, once required and once nullable.
    #[derive(crate::Features)]
    #[features(name = "sample", cardinality = "many")]
    struct Sample {
        /// A name.
        ///
        /// Second paragraph.
        name: String,
        big: i64,
        small: i32,
        unsigned: u32,
        ratio: f64,
        half: f32,
        flag: bool,
        embedding: Vec<f64>,
        #[column(rename = "seen_at")]
        at: Timestamp,
        day: Date,
        uuid: Uuid,
        extra: Json,
        maybe_name: Option<String>,
        maybe_big: Option<i64>,
        maybe_json: Option<Json>,
        r#type: Option<Vec<f64>>,
    }

    fn sample() -> Sample {
        Sample {
            name: "a".into(),
            big: i64::MAX,
            small: -3,
            unsigned: u32::MAX,
            ratio: 0.25,
            half: 0.5,
            flag: true,
            embedding: vec![1.0, -2.0],
            at: Timestamp::new("2024-05-01T12:00:00Z"),
            day: Date::new("2024-05-01"),
            uuid: Uuid::new("67e55044-10b1-426f-9247-bb680e5fe0c8"),
            extra: Json::from_value(&serde_json::json!([1, "two"])),
            maybe_name: None,
            maybe_big: Some(7),
            maybe_json: None,
            r#type: Some(vec![]),
        }
    }

    #[test]
    fn contract_is_derived_from_the_struct() {
        use ColumnType::*;
        let contract = Sample::contract();
        assert_eq!(contract.feature, "sample");
        assert_eq!(contract.cardinality, Cardinality::Many);
        let columns: Vec<_> = contract
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty, c.nullable))
            .collect();
        assert_eq!(
            columns,
            [
                ("name", Text, false),
                ("big", Integer, false),
                ("small", Integer, false),
                ("unsigned", Integer, false),
                ("ratio", Number, false),
                ("half", Number, false),
                ("flag", Boolean, false),
                ("embedding", FloatVector, false),
                ("seen_at", Timestamp, false),
                ("day", Date, false),
                ("uuid", Uuid, false),
                ("extra", Json, false),
                ("maybe_name", Text, true),
                ("maybe_big", Integer, true),
                ("maybe_json", Json, true),
                ("type", FloatVector, true),
            ]
        );
        assert_eq!(
            contract.columns[0].description.as_deref(),
            Some("A name.\n\nSecond paragraph.")
        );
        assert!(
            contract.columns[1..]
                .iter()
                .all(|c| c.description.is_none())
        );
    }

    #[test]
    fn row_values_follow_column_order() {
        assert_eq!(
            sample().into_row(),
            [
                Value::Text("a".into()),
                Value::Integer(i64::MAX),
                Value::Integer(-3),
                Value::Integer(u32::MAX.into()),
                Value::Number(0.25),
                Value::Number(0.5),
                Value::Boolean(true),
                Value::FloatVector(vec![1.0, -2.0]),
                Value::Timestamp("2024-05-01T12:00:00Z".into()),
                Value::Date("2024-05-01".into()),
                Value::Uuid("67e55044-10b1-426f-9247-bb680e5fe0c8".into()),
                Value::Json(r#"[1,"two"]"#.into()),
                Value::Null,
                Value::Integer(7),
                Value::Null,
                Value::FloatVector(vec![]),
            ]
        );
    }
}
