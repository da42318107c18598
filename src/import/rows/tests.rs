//! Rows to events: the fields and kinds taken from the record types, cells read by kind,
//! ids from content, and bad rows named by row and field as the worker would name them.

use super::*;

fn row(number: usize, cells: &[&str]) -> Row {
    let cell = |text: &&str| if text.is_empty() { Cell::Empty } else { Cell::Text((*text).to_owned()) };
    Row { number, cells: cells.iter().map(cell).collect() }
}

fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn trainings() -> Importer {
    let names = header(&[" Training_ID ", "title", "held_on", "beneficiaries"]);
    Importer::new(RecordType::CapacityTraining, &names, "2026-12-01T06:00:00Z".into()).unwrap()
}

#[test]
fn fields_and_their_kinds_come_from_the_record_types() {
    let publication = fields(RecordType::Publication);

    assert_eq!(publication["publication_id"], Kind::Text);
    assert_eq!(publication["scope"], Kind::Text);
    assert_eq!(publication["countries"], Kind::List);
    assert_eq!(publication["contributed"], Kind::Boolean);
    assert_eq!(publication["published_on"], Kind::Date);
    assert_eq!(fields(RecordType::MemberExpertise)["year"], Kind::Integer);
    assert!(!fields(RecordType::Fact).contains_key("attributes"), "a cell cannot hold an object");
    assert_eq!(fields(RecordType::Fact)["value"], Kind::Integer);
}

#[test]
fn a_row_becomes_an_event_whose_id_depends_on_its_content_only() {
    let importer = trainings();
    let first = importer.event(&row(2, &["t-1", "Séminaire à Lyon", "15/03/2019", "ecpat-france; ecpat-uk"])).unwrap();
    let same = importer.event(&row(7, &["t-1", "Séminaire à Lyon", "2019-03-15", "ecpat-france;ecpat-uk;"])).unwrap();
    let changed = importer.event(&row(2, &["t-1", "Séminaire à Lyon", "2019-03-16", "ecpat-france;ecpat-uk"])).unwrap();

    assert_eq!(first.id, same.id, "the same content written differently");
    assert_ne!(first.id, changed.id);
    assert_eq!(first.key, r#"["t-1"]"#);
    let event: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(event["source"], "urn:ecpat:import:capacity_training");
    assert_eq!(event["type"], "org.ecpat.capacity.training.recorded");
    assert_eq!(event["data"]["held_on"], "2019-03-15");
    assert_eq!(event["data"]["beneficiaries"], json!(["ecpat-france", "ecpat-uk"]));
}

#[test]
fn a_bad_row_names_its_row_and_field_as_the_worker_would() {
    let importer = trainings();

    let error = importer.event(&row(4, &["t-1", "A", "2019-02-30", "ecpat-france"])).unwrap_err();
    assert_eq!(error.to_string(), r#"row 4: field held_on: "2019-02-30" is not a calendar date YYYY-MM-DD"#);
    let error = importer.event(&row(5, &["t-1", "A", "2019-02-03", ""])).unwrap_err();
    assert_eq!(error.to_string(), "row 5: field beneficiaries: is required");
    let error = importer.event(&row(6, &["t-1", "A", "2019-02-03", "ECPAT France"])).unwrap_err();
    assert_eq!((error.row, error.field.as_str()), (6, "beneficiaries[0]"));
}

#[test]
fn an_unknown_or_repeated_column_refuses_the_header() {
    let unknown = Importer::new(RecordType::CapacityTraining, &header(&["training_id", "lieu"]), String::new());
    let repeated = Importer::new(RecordType::CapacityTraining, &header(&["Title", "title"]), String::new());

    assert_eq!(
        unknown.err().unwrap().to_string(),
        r#"column "lieu" is not a field of capacity_training (the fields are: beneficiaries, held_on, title, training_id)"#
    );
    assert_eq!(repeated.err().unwrap(), HeaderError::DuplicateColumn { column: "title".into() });
    let posts = Importer::new(RecordType::SocialPost, &header(&["platform"]), String::new());
    assert_eq!(posts.err().unwrap(), HeaderError::NotImportable("social_post"));
}

#[test]
fn cells_are_read_as_their_fields_kinds() {
    for (text, expected) in [("Oui", true), ("non", false), ("YES", true), ("0", false), ("VRAI", true)] {
        assert_eq!(value(&Cell::Text(text.into()), Kind::Boolean), Ok(Value::Bool(expected)), "{text}");
    }
    assert!(value(&Cell::Text("peut-être".into()), Kind::Boolean).unwrap_err().contains("is not yes or no"));
    assert_eq!(value(&Cell::Number(2019.0), Kind::Integer), Ok(json!(2019)));
    assert_eq!(value(&Cell::Text("2019".into()), Kind::Integer), Ok(json!(2019)));
    assert_eq!(value(&Cell::Number(43466.0), Kind::Date), Ok(json!("2019-01-01")));
    assert_eq!(value(&Cell::Date(NaiveDate::from_ymd_opt(2019, 1, 2).unwrap()), Kind::Date), Ok(json!("2019-01-02")));
    assert_eq!(value(&Cell::Text("31/12/2019".into()), Kind::Date), Ok(json!("2019-12-31")));
    assert_eq!(value(&Cell::Text("31/13/2019".into()), Kind::Date), Ok(json!("31/13/2019")));
    assert_eq!(value(&Cell::Number(12.0), Kind::Text), Ok(json!("12")));
    assert_eq!(value(&Cell::Text("fr".into()), Kind::List), Ok(json!(["fr"])));
}
