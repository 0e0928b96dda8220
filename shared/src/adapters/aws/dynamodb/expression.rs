//! Expression attribute names and values given as tables: one call for all
//! of a request's `#name` placeholders and one for its `:value`s, so a
//! request reads as its expressions and their bindings, not as a ladder of
//! builder calls.

use aws_sdk_dynamodb::types::AttributeValue;

pub(crate) trait Bindings: Sized {
    /// Binds each `#placeholder` to an attribute name.
    fn names(self, names: &[(&str, &str)]) -> Self;
    /// Binds each `:placeholder` to a value.
    fn values<'a>(self, values: impl IntoIterator<Item = (&'a str, AttributeValue)>) -> Self;
}

macro_rules! bindings_for {
    ($($builder:ty),+ $(,)?) => {$(
        impl Bindings for $builder {
            fn names(self, names: &[(&str, &str)]) -> Self {
                names.iter().fold(self, |request, (placeholder, name)| {
                    request.expression_attribute_names(*placeholder, *name)
                })
            }
            fn values<'a>(self, values: impl IntoIterator<Item = (&'a str, AttributeValue)>) -> Self {
                values.into_iter().fold(self, |request, (placeholder, value)| {
                    request.expression_attribute_values(placeholder, value)
                })
            }
        }
    )+};
}

bindings_for!(
    aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder,
    aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
    aws_sdk_dynamodb::types::builders::UpdateBuilder,
    aws_sdk_dynamodb::types::builders::PutBuilder,
    aws_sdk_dynamodb::types::builders::DeleteBuilder,
    aws_sdk_dynamodb::types::builders::ConditionCheckBuilder,
);
