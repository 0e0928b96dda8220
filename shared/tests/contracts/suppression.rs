//! `SuppressionList`: addresses (by blind index) that must never be mailed
//! again; the first reason recorded is the one kept.

use carepost::ports::{SuppressionList, SuppressionReason};

use super::support::unique_index;

pub async fn suppression_list_contract(list: &dyn SuppressionList) {
    a_suppressed_address_reports_its_reason(list).await;
    a_second_suppression_keeps_the_first_reason(list).await;
    an_unknown_address_is_not_suppressed(list).await;
    suppressing_one_address_leaves_others_alone(list).await;
    a_page_of_addresses_is_checked_at_once(list).await;
}

pub async fn a_page_of_addresses_is_checked_at_once(list: &dyn SuppressionList) {
    let indexes: Vec<_> = (0..230).map(|_| unique_index()).collect();
    for index in indexes.iter().step_by(7) {
        list.suppress(index, SuppressionReason::UnsubscribeAll).await.unwrap();
    }

    let suppressed = list.suppressed_among(&indexes).await.unwrap();

    let expected: std::collections::HashSet<_> = indexes.iter().step_by(7).cloned().collect();
    assert_eq!(suppressed, expected);
    assert!(list.suppressed_among(&[]).await.unwrap().is_empty());
}

pub async fn a_suppressed_address_reports_its_reason(list: &dyn SuppressionList) {
    let index = unique_index();

    list.suppress(&index, SuppressionReason::HardBounce).await.unwrap();

    assert_eq!(list.reason(&index).await.unwrap(), Some(SuppressionReason::HardBounce));
}

pub async fn a_second_suppression_keeps_the_first_reason(list: &dyn SuppressionList) {
    let index = unique_index();
    list.suppress(&index, SuppressionReason::Complaint).await.unwrap();

    list.suppress(&index, SuppressionReason::UnsubscribeAll).await.unwrap();
    list.suppress(&index, SuppressionReason::HardBounce).await.unwrap();

    assert_eq!(list.reason(&index).await.unwrap(), Some(SuppressionReason::Complaint));
}

pub async fn an_unknown_address_is_not_suppressed(list: &dyn SuppressionList) {
    assert_eq!(list.reason(&unique_index()).await.unwrap(), None);
}

pub async fn suppressing_one_address_leaves_others_alone(list: &dyn SuppressionList) {
    let (suppressed, neighbour) = (unique_index(), unique_index());

    list.suppress(&suppressed, SuppressionReason::UnsubscribeAll).await.unwrap();

    assert_eq!(list.reason(&suppressed).await.unwrap(), Some(SuppressionReason::UnsubscribeAll));
    assert_eq!(list.reason(&neighbour).await.unwrap(), None);
}

mod embedded {
    use carepost::adapters::embedded::SqliteSuppressionList;

    use super::super::support::{Scratch, scratch};

    fn list() -> (Scratch, SqliteSuppressionList) {
        let s = scratch();
        let list = SqliteSuppressionList::new(s.db.clone());
        (s, list)
    }

    #[tokio::test]
    async fn a_page_of_addresses_is_checked_at_once() {
        let (_s, list) = list();
        super::a_page_of_addresses_is_checked_at_once(&list).await;
    }

    #[tokio::test]
    async fn a_suppressed_address_reports_its_reason() {
        let (_s, list) = list();
        super::a_suppressed_address_reports_its_reason(&list).await;
    }

    #[tokio::test]
    async fn a_second_suppression_keeps_the_first_reason() {
        let (_s, list) = list();
        super::a_second_suppression_keeps_the_first_reason(&list).await;
    }

    #[tokio::test]
    async fn an_unknown_address_is_not_suppressed() {
        let (_s, list) = list();
        super::an_unknown_address_is_not_suppressed(&list).await;
    }

    #[tokio::test]
    async fn suppressing_one_address_leaves_others_alone() {
        let (_s, list) = list();
        super::suppressing_one_address_leaves_others_alone(&list).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_shared_list() {
        let (_s, list) = list();
        super::suppression_list_contract(&list).await;
    }
}
