//! Unit tests of position parsing and comparison.

use super::*;

fn lsn(s: &str) -> Lsn {
    s.parse().unwrap()
}

fn pg(timeline: u32, end: &str, history: Vec<TimelineSwitch>) -> PgPosition {
    PgPosition {
        timeline,
        current: Some(lsn(end)),
        history,
        ..Default::default()
    }
}

fn gtids(s: &str) -> GtidSet {
    s.parse().unwrap()
}

#[test]
fn lsn_round_trips_and_orders() {
    assert_eq!(lsn("16/B374D848").0, 0x16_B374_D848);
    assert_eq!(lsn("16/B374D848").to_string(), "16/B374D848");
    assert!(lsn("0/3000060") < lsn("1/0"));
    assert!("16-B3".parse::<Lsn>().is_err());
}

#[test]
fn history_file_parses() {
    let h = parse_timeline_history("1\t0/3000060\tno recovery target specified\n\n2\t0/5000000\tx\n").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        h[1],
        TimelineSwitch {
            timeline: 2,
            switch: lsn("0/5000000")
        }
    );
    assert!(parse_timeline_history("one two").is_err());
}

#[test]
fn same_timeline_compares_lsns() {
    let a = pg(1, "0/5000000", vec![]);
    let b = pg(1, "0/4000000", vec![]);
    assert_eq!(compare_pg(&a, &b), Comparison::Ahead);
    assert_eq!(compare_pg(&b, &a), Comparison::Behind);
    assert_eq!(compare_pg(&a, &a), Comparison::Equal);
    assert!(!compare_pg(&b, &a).at_least());
}

#[test]
fn newer_timeline_contains_older_up_to_the_fork() {
    let fork = vec![TimelineSwitch {
        timeline: 1,
        switch: lsn("0/5000000"),
    }];
    let promoted = pg(2, "0/5000100", fork.clone());
    let old_replica = pg(1, "0/5000000", vec![]);
    assert_eq!(compare_pg(&promoted, &old_replica), Comparison::Ahead);
    assert_eq!(compare_pg(&old_replica, &promoted), Comparison::Behind);
    let old_primary_went_on = pg(1, "0/5000200", vec![]);
    assert!(matches!(
        compare_pg(&promoted, &old_primary_went_on),
        Comparison::Diverged { .. }
    ));
    let unrelated = pg(
        3,
        "0/6000000",
        vec![TimelineSwitch {
            timeline: 2,
            switch: lsn("0/1"),
        }],
    );
    assert!(matches!(
        compare_pg(&unrelated, &old_replica),
        Comparison::Diverged { .. }
    ));
}

#[test]
fn gtid_sets_parse_and_reject_mysql8() {
    let s = gtids("0-1-10, 1-2-5,0-3-7");
    assert_eq!(
        s.0[&0],
        Gtid {
            domain: 0,
            server_id: 1,
            seq: 10
        }
    );
    assert_eq!(s.to_string(), "0-1-10,1-2-5");
    assert_eq!(gtids(""), GtidSet::default());
    let err = "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"
        .parse::<GtidSet>()
        .unwrap_err();
    assert!(err.to_string().contains("MySQL 8"));
}

#[test]
fn gtid_comparison_orders_and_detects_divergence() {
    assert_eq!(compare_gtid(&gtids("0-1-10"), &gtids("0-1-9")), Comparison::Ahead);
    assert_eq!(compare_gtid(&gtids("0-1-9"), &gtids("0-1-10")), Comparison::Behind);
    assert_eq!(compare_gtid(&gtids("0-1-10"), &gtids("0-1-10")), Comparison::Equal);
    // A replica promoted earlier wrote 0-2-11; the same seq from server 1 is another history.
    assert!(matches!(
        compare_gtid(&gtids("0-2-11"), &gtids("0-1-11")),
        Comparison::Diverged { .. }
    ));
    assert_eq!(
        compare_gtid(&gtids("0-1-10,1-1-3"), &gtids("0-1-11")),
        Comparison::Incomparable
    );
    assert_eq!(
        compare_gtid(&gtids("0-1-10,1-1-3"), &gtids("0-1-10")),
        Comparison::Ahead
    );
}

#[test]
fn errant_transactions_are_found() {
    let primary = gtids("0-1-100");
    assert!(errant_gtids(&gtids("0-1-90"), &primary).is_empty());
    assert_eq!(errant_gtids(&gtids("0-2-101"), &primary).len(), 1);
    assert_eq!(errant_gtids(&gtids("0-2-100"), &primary).len(), 1);
    assert_eq!(errant_gtids(&gtids("0-1-100,5-2-1"), &primary).len(), 1);
}

#[test]
fn lag_between_counts_bytes_and_transactions() {
    let p = Position::Postgres(pg(1, "0/5000100", vec![]));
    let r = Position::Postgres(PgPosition {
        timeline: 1,
        received: Some(lsn("0/5000000")),
        replayed: Some(lsn("0/4000000")),
        ..Default::default()
    });
    assert_eq!(lag_between(&p, &r), Some(0x100));
    let mp = Position::Mysql(MysqlPosition {
        binlog: gtids("0-1-20"),
        ..Default::default()
    });
    let mr = Position::Mysql(MysqlPosition {
        binlog: gtids("0-1-12"),
        slave: gtids("0-1-12"),
        io: Some(gtids("0-1-15")),
    });
    assert_eq!(lag_between(&mp, &mr), Some(5));
    assert_eq!(gtids("0-1-15").transactions_ahead_of(&gtids("0-1-12")), 3);
}

#[test]
fn positions_round_trip_through_text_and_compare_signed() {
    let pg = Position::Postgres(PgPosition {
        timeline: 3,
        received: Some("0/3000060".parse().expect("lsn")),
        ..PgPosition::default()
    });
    let back = Position::parse(true, &pg.to_string()).expect("parses");
    assert_eq!(compare(&back, &pg), Comparison::Equal);
    let behind = Position::parse(true, "3/0/3000000").expect("parses");
    assert_eq!(units_ahead(&behind, &pg), Some(-0x60));
    assert_eq!(
        units_ahead(&Position::parse(true, "2/0/3000000").expect("p"), &pg),
        None
    );
    let a = Position::parse(false, "0-1-10,1-2-5").expect("gtids");
    let b = Position::parse(false, "0-1-7,1-2-6").expect("gtids");
    assert_eq!(units_ahead(&a, &b), Some(2));
    assert!(Position::parse(true, "garbage").is_none());
}
