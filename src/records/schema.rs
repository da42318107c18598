//! The JSON Schema of records as the API shows them (in its OpenAPI document): derived from
//! the record types, with the formats that `fields` checks and the `record_type` tag.

use utoipa::openapi::schema::{
    AdditionalProperties, Discriminator, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Array, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::{
    AdvocacyInitiative, CapacityTraining, ChildOutreach, Fact, MediaStory, MemberExpertise, Publication, Record,
    RecordType, SocialSeries, SurvivorParticipation, UnRecommendation, UnSubmission,
};

/// An ECPAT member's code, e.g. `ecpat-france`.
pub struct Member;

impl PartialSchema for Member {
    fn schema() -> RefOr<Schema> {
        text(r"^[a-z0-9][a-z0-9-]{1,63}$", "An ECPAT member's code, e.g. `ecpat-france`.")
    }
}

impl ToSchema for Member {}

/// An ISO 3166-1 alpha-2 country code, upper-case (`XK` too).
pub struct Country;

impl PartialSchema for Country {
    fn schema() -> RefOr<Schema> {
        text(r"^[A-Z]{2}$", "ISO 3166-1 alpha-2, upper-case (`XK` too).")
    }
}

impl ToSchema for Country {}

/// A string matching `pattern`.
fn text(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).description(Some(description)).into()
}

/// `paragraph`: an identifier, a non-negative integer or null.
pub fn paragraph() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(256)))
        .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// A list of free texts (at most 2000 characters each).
pub fn free_text_list() -> RefOr<Schema> {
    Array::new(ObjectBuilder::new().schema_type(Type::String).max_length(Some(2000))).into()
}

/// A slug: `^[a-z][a-z0-9_]{0,63}$`.
const SLUG: &str = r"^[a-z][a-z0-9_]{0,63}$";

/// A list of slugs (a fact's `tags`).
pub fn slug_list() -> RefOr<Schema> {
    Array::new(ObjectBuilder::new().schema_type(Type::String).pattern(Some(SLUG))).into()
}

/// A fact's `attributes`: slug keys, texts of at most 200 characters; or null.
pub fn attributes() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property_names(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some(SLUG))))
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String).max_length(Some(200))))
        .into()
}

/// `schema` (an object) with every property required and no other allowed: what a
/// serialised struct without optional fields gives.
pub fn strict(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            object.required = object.properties.keys().cloned().collect();
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            object.into()
        }
        other => other,
    }
}

/// `schema` (an object) with one more property, required.
pub fn with_property(schema: RefOr<Schema>, name: &str, property: impl Into<RefOr<Schema>>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            object.properties.insert(name.to_owned(), property.into());
            strict(object.into())
        }
        other => other,
    }
}

/// The schema of a kind of record's fields (without the tag).
pub fn record_schema(record_type: RecordType) -> RefOr<Schema> {
    variants()
        .into_iter()
        .find(|(kind, _)| *kind == record_type)
        .map(|(_, schema)| schema)
        .expect("every kind has a schema")
}

/// Each kind of record and its schema (without the tag).
fn variants() -> [(RecordType, RefOr<Schema>); 11] {
    [
        (RecordType::SocialPost, SocialSeries::schema()),
        (RecordType::Publication, Publication::schema()),
        (RecordType::UnSubmission, UnSubmission::schema()),
        (RecordType::UnRecommendation, UnRecommendation::schema()),
        (RecordType::MediaStory, MediaStory::schema()),
        (RecordType::AdvocacyInitiative, AdvocacyInitiative::schema()),
        (RecordType::SurvivorParticipation, SurvivorParticipation::schema()),
        (RecordType::ChildOutreach, ChildOutreach::schema()),
        (RecordType::CapacityTraining, CapacityTraining::schema()),
        (RecordType::MemberExpertise, MemberExpertise::schema()),
        (RecordType::Fact, Fact::schema()),
    ]
}

/// The name of a kind of record's schema: `social_post` gives `SocialPostRecord`.
fn schema_name(record_type: RecordType) -> String {
    let words = record_type.as_str().split('_');
    let capitalised = words.map(|word| word[..1].to_uppercase() + &word[1..]);
    capitalised.chain(["Record".to_owned()]).collect()
}

impl PartialSchema for Record {
    fn schema() -> RefOr<Schema> {
        let mut discriminator = Discriminator::new("record_type");
        let mut one_of = OneOfBuilder::new().description(Some(
            "A current record in its normalised form (countries upper-case, timestamps in UTC), tagged by \
             `record_type`.",
        ));
        for record_type in RecordType::ALL {
            let name = schema_name(*record_type);
            discriminator.mapping.insert(record_type.as_str().to_owned(), format!("#/components/schemas/{name}"));
            one_of = one_of.item(Ref::from_schema_name(name));
        }
        one_of.discriminator(Some(discriminator)).into()
    }
}

impl ToSchema for Record {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for (record_type, schema) in variants() {
            let tag = ObjectBuilder::new().schema_type(Type::String).enum_values(Some([record_type.as_str()]));
            schemas.push((schema_name(record_type), with_property(schema, "record_type", tag)));
        }
        SocialSeries::schemas(schemas);
        Publication::schemas(schemas);
        UnSubmission::schemas(schemas);
        UnRecommendation::schemas(schemas);
        MediaStory::schemas(schemas);
        AdvocacyInitiative::schemas(schemas);
        SurvivorParticipation::schemas(schemas);
        ChildOutreach::schemas(schemas);
        CapacityTraining::schemas(schemas);
        MemberExpertise::schemas(schemas);
        Fact::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_sets_of_values_are_described_with_their_wire_spelling() {
        let schema = serde_json::to_value(RecordType::schema()).unwrap();
        assert_eq!(schema["enum"][0], "social_post");
        assert_eq!(schema["enum"].as_array().unwrap().len(), RecordType::ALL.len());
        assert_eq!(schema["description"], "The kinds of record, as named by withdrawals and stored with each version.");
    }

    #[test]
    fn every_kind_of_record_has_a_schema_named_after_it() {
        assert_eq!(schema_name(RecordType::SocialPost), "SocialPostRecord");
        assert_eq!(schema_name(RecordType::MemberExpertise), "MemberExpertiseRecord");
        let mut schemas = Vec::new();
        Record::schemas(&mut schemas);
        for (record_type, _) in variants() {
            assert!(schemas.iter().any(|(name, _)| *name == schema_name(record_type)), "{record_type:?}");
        }
    }
}
