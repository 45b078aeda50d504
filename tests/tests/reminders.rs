//! Expiry reminders (CPS 4.6.1), end to end: card certificates issued and
//! activated through `pki-admin`, the `reminders` and `mail` jobs run through
//! `pki-scheduler run-once` with the clock moved by `PKI_FAKE_NOW`, and the
//! messages judged as a real SMTP server (aiosmtpd) received them.

use chrono::{DateTime, Datelike, Duration, Utc};
use e2e_tests::*;

/// One holder with an e-mail address, a card, and its authentication and
/// signature certificates (active). Returns the serials.
fn card_with_certificates(env: &TestEnv, id: &Identity, card: &Card) -> Vec<String> {
    env.holder_with_card(id, card);
    let mut serials = Vec::new();
    for usage in ["auth", "sign"] {
        let issued = env.issue(&card.number, usage, &env.csr(KeyType::EcP256));
        serials.push(issued.serial.to_lowercase());
    }
    env.activate_card(&card.number);
    serials.sort();
    serials
}

/// The reminders of one card, ordered by offset (largest first).
fn reminders_of(env: &TestEnv, card: &str) -> Vec<Value> {
    let mut rows: Vec<Value> = env
        .reminders()
        .into_iter()
        .filter(|r| r["card_number"] == card)
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r["offset_days"].as_i64().unwrap_or(0)));
    rows
}

fn serials_of(reminder: &Value) -> Vec<String> {
    let mut v: Vec<String> = reminder["serials"]
        .as_array()
        .unwrap_or_else(|| panic!("serials in {}", abbreviate(reminder)))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_lowercase())
        .collect();
    v.sort();
    v
}

/// `2027-03-31T23:59:59Z` as the reminder's `not_after` field shows it.
fn rfc3339(t: DateTime<Utc>) -> String {
    fake_now(t)
}

const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// Runs the two jobs at `now`; returns (reminders report, mail report).
fn run_jobs(env: &TestEnv, now: DateTime<Utc>) -> (Value, Value) {
    let decided = env.scheduler_job("reminders", now);
    let mailed = env.scheduler_job("mail", now);
    (decided, mailed)
}

/// Scenario 1: one mail per offset (90, 30, 7 days before the end), to the
/// registry's address, in French then English, never twice: not when the
/// jobs run again (a restart), not when two schedulers run at once.
fn one_mail_per_offset_and_never_twice(env: &TestEnv) {
    env.init();
    let smtp = SmtpSink::start(env.dir(), free_port());
    env.set_mail(smtp.port, "");
    let id = Identity::national("MC10000001");
    let card = Card::identity("ID100000001", &id.registry_key);
    let serials = card_with_certificates(env, &id, &card);
    let end = card.expected_not_after();
    let iso = end.format("%Y-%m-%d").to_string();
    let day = end.date_naive();
    let french_date = format!(
        "{} {} {}",
        if day.day() == 1 {
            "1er".to_string()
        } else {
            day.day().to_string()
        },
        MONTHS_FR[day.month0() as usize],
        day.year()
    );

    // 91 days before: nothing is due.
    let (d, m) = run_jobs(env, end - Duration::days(91));
    assert_eq!(count_of(&d, "decided_email"), 0, "{d}");
    assert_eq!(count_of(&d, "examined"), 0, "{d}");
    assert_eq!(count_of(&m, "sent"), 0, "{m}");
    assert!(smtp.messages().is_empty());

    // 89 days before: the 90-day reminder, once.
    let t90 = end - Duration::days(89);
    let (d, m) = run_jobs(env, t90);
    assert_eq!(count_of(&d, "examined"), 2, "both certificates: {d}");
    assert_eq!(count_of(&d, "decided_email"), 1, "{d}");
    assert_eq!(count_of(&d, "decided_postal"), 0, "{d}");
    assert_eq!(count_of(&m, "sent"), 1, "{m}");
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let msg = &msgs[0];
    assert_eq!(msg["rcpt_tos"], json!([id.email.clone()]), "{msg}");
    assert_eq!(msg["to"], id.email.as_str(), "{msg}");
    assert!(
        str_field(msg, "from").contains("no-reply@eid.example.mc"),
        "{msg}"
    );
    assert_eq!(msg["content_type"], "text/plain");
    assert_eq!(msg["charset"], "utf-8");
    let subject = str_field(msg, "subject");
    assert!(subject.contains(&card.number), "{subject}");
    assert!(subject.contains(&iso), "{subject}");
    assert!(
        subject.contains("expirent") && subject.contains("expire on"),
        "bilingual subject: {subject}"
    );
    let body = str_field(msg, "body");
    let fr = body
        .find("Bonjour")
        .unwrap_or_else(|| panic!("no French: {body}"));
    let en = body
        .find("Dear")
        .unwrap_or_else(|| panic!("no English: {body}"));
    assert!(fr < en, "French first, then English:\n{body}");
    for needle in [
        card.number.as_str(),
        iso.as_str(),
        french_date.as_str(),
        "Léa Marie Grimaldi",
        "borne libre-service",
        "self-service kiosk",
        "https://pki.example.com/eid/renew",
        "authentification, signature",
        "authentication, signature",
    ] {
        assert!(body.contains(needle), "body lacks {needle:?}:\n{body}");
    }
    assert!(
        !body.contains("renouvellement de votre carte"),
        "the certificate ends before the card: kiosk renewal, not a new card\n{body}"
    );
    let id90 = str_field(msg, "message_id").to_string();
    assert!(
        id90.contains(&card.number.to_lowercase()) && id90.contains(".90d@eid.example.mc"),
        "{id90}"
    );

    // The outbox row: sent, after one attempt, naming both certificates.
    let rows = reminders_of(env, &card.number);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["offset_days"], 90);
    assert_eq!(rows[0]["state"], "sent");
    assert_eq!(rows[0]["attempts"], 1);
    assert_eq!(rows[0]["channel"], "email");
    assert_eq!(rows[0]["not_after"], rfc3339(end));
    assert_eq!(serials_of(&rows[0]), serials);

    // A restart at the same instant sends nothing more; nor does day 60.
    for now in [t90, t90 + Duration::minutes(5), end - Duration::days(60)] {
        let (d, m) = run_jobs(env, now);
        assert_eq!(count_of(&d, "decided_email"), 0, "{d}");
        assert_eq!(count_of(&m, "sent"), 0, "{m}");
    }
    assert_eq!(smtp.messages().len(), 1);

    // 29 days before: two schedulers at once decide and deliver it once.
    let t30 = end - Duration::days(29);
    for job in ["reminders", "mail"] {
        let children: Vec<_> = (0..2)
            .map(|_| {
                env.scheduler_command(job, t30)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("start pki-scheduler")
            })
            .collect();
        let reports: Vec<Value> = children
            .into_iter()
            .map(|c| scheduler_report(job, t30, &c.wait_with_output().expect("wait")))
            .collect();
        let key = if job == "reminders" {
            "decided_email"
        } else {
            "sent"
        };
        let total: u64 = reports.iter().map(|r| count_of(r, key)).sum();
        assert_eq!(total, 1, "two {job} jobs at once: {reports:?}");
    }
    assert_eq!(smtp.messages().len(), 2);

    // 6 days before: the 7-day reminder; then nothing, whatever runs again.
    let t7 = end - Duration::days(6);
    let (d, m) = run_jobs(env, t7);
    assert_eq!(count_of(&d, "decided_email"), 1, "{d}");
    assert_eq!(count_of(&m, "sent"), 1, "{m}");
    let (d, m) = run_jobs(env, t7 + Duration::hours(1));
    assert_eq!(count_of(&d, "decided_email"), 0, "{d}");
    assert_eq!(count_of(&m, "sent"), 0, "{m}");

    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 3, "exactly one mail per offset: {msgs:?}");
    let ids: Vec<&str> = msgs.iter().map(|m| str_field(m, "message_id")).collect();
    assert!(
        ids[1].contains(".30d@") && ids[2].contains(".7d@"),
        "{ids:?}"
    );
    for m in &msgs {
        assert_eq!(m["rcpt_tos"], json!([id.email.clone()]));
        assert!(str_field(m, "body").contains(&iso));
    }
    let rows = reminders_of(env, &card.number);
    let offsets: Vec<i64> = rows
        .iter()
        .map(|r| r["offset_days"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![90, 30, 7]);
    assert!(
        rows.iter()
            .all(|r| r["state"] == "sent" && r["attempts"] == 1),
        "{rows:?}"
    );

    // Audited: three decisions, three deliveries; the chain is intact.
    let audit = env.audit_list();
    let count = |action: &str| audit.iter().filter(|r| r["action"] == action).count();
    assert_eq!(count("reminder.decide"), 3);
    assert_eq!(count("reminder.sent"), 3);
    env.audit_verify_ok();
}

/// Scenario 2: a holder without e-mail is listed for a letter, and no mail
/// leaves. Only the smallest due offset is decided when the first run comes
/// late (29 days before the end: the 30-day reminder, not also the 90-day).
fn holders_without_email_get_a_letter(env: &TestEnv) {
    env.init();
    let smtp = SmtpSink::start(env.dir(), free_port());
    env.set_mail(smtp.port, "");
    let id = Identity::resident("MC20000001");
    assert!(id.email.is_empty());
    let card = Card::residence("RS200000001", &id.registry_key);
    let serials = card_with_certificates(env, &id, &card);
    let end = card.expected_not_after();

    let (d, m) = run_jobs(env, end - Duration::days(29));
    assert_eq!(count_of(&d, "decided_postal"), 1, "{d}");
    assert_eq!(count_of(&d, "decided_email"), 0, "{d}");
    assert_eq!(count_of(&m, "sent"), 0, "{m}");
    let (d, _) = run_jobs(env, end - Duration::days(20));
    assert_eq!(count_of(&d, "decided_postal"), 0, "{d}");
    assert!(smtp.messages().is_empty(), "no mail without an address");

    let rows = reminders_of(env, &card.number);
    assert_eq!(rows.len(), 1, "only the smallest due offset: {rows:?}");
    let r = &rows[0];
    assert_eq!(r["offset_days"], 30);
    assert_eq!(r["channel"], "postal");
    assert_eq!(r["state"], "postal");
    assert_eq!(r["recipient"], Value::Null);
    assert_eq!(serials_of(r), serials);
    // The letter's text: the residence card ends with its certificates.
    let body = str_field(r, "body");
    assert!(body.contains("Marco Giuseppe Rossi"), "{body}");
    assert!(
        body.contains("carte de résident") && body.contains("residence card"),
        "{body}"
    );

    let csv = env.ok_stdout(&["reminders", "postal"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "holder_key,family_name,given_names,card_number,end_date,offset_days,serials,decided_at"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(fields[0], id.registry_key);
    assert_eq!(fields[1], "Rossi");
    assert_eq!(fields[2], "Marco Giuseppe");
    assert_eq!(fields[3], card.number);
    assert_eq!(fields[4], end.format("%Y-%m-%d").to_string());
    assert_eq!(fields[5], "30");

    let postal = as_array(
        env.ok_json(&["reminders", "list", "--state", "postal", "--json"]),
        "reminders list",
    );
    assert_eq!(postal.len(), 1);
    let pending = as_array(
        env.ok_json(&["reminders", "list", "--state", "pending", "--json"]),
        "reminders list",
    );
    assert!(pending.is_empty(), "{pending:?}");
    let text = env.ok_stdout(&["reminders", "list"]);
    assert!(
        text.contains(&card.number) && text.contains("postal"),
        "{text}"
    );
}

/// Scenario 3a: a relay that is down costs attempts, backs off, loses
/// nothing; once it is up the reminder is delivered, once.
fn a_relay_that_is_down_means_retries(env: &TestEnv) {
    env.init();
    let port = free_port();
    env.set_mail(port, "retry_base_seconds = 60\nmax_attempts = 8");
    let id = Identity::national("MC30000001");
    let card = Card::identity("ID300000001", &id.registry_key);
    card_with_certificates(env, &id, &card);
    let end = card.expected_not_after();
    let t0 = end - Duration::days(80);

    let (d, m) = run_jobs(env, t0);
    assert_eq!(count_of(&d, "decided_email"), 1, "{d}");
    assert_eq!(
        (count_of(&m, "sent"), count_of(&m, "failed")),
        (0, 1),
        "{m}"
    );
    let r = &reminders_of(env, &card.number)[0];
    assert_eq!(r["state"], "pending");
    assert_eq!(r["attempts"], 1);
    assert_eq!(r["next_attempt_at"], rfc3339(t0 + Duration::seconds(60)));
    assert!(
        r["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{r}"
    );
    assert_eq!(r["claimed_until"], Value::Null);

    // Not due yet: not tried.
    let m = env.scheduler_job("mail", t0 + Duration::seconds(30));
    assert_eq!(
        (count_of(&m, "sent"), count_of(&m, "failed")),
        (0, 0),
        "{m}"
    );
    assert_eq!(reminders_of(env, &card.number)[0]["attempts"], 1);

    // Second failure: the delay doubles.
    let t1 = t0 + Duration::seconds(61);
    let m = env.scheduler_job("mail", t1);
    assert_eq!(count_of(&m, "failed"), 1, "{m}");
    let r = &reminders_of(env, &card.number)[0];
    assert_eq!(r["attempts"], 2);
    assert_eq!(r["next_attempt_at"], rfc3339(t1 + Duration::seconds(120)));

    // The relay comes up; the reminder goes at its next attempt, once.
    let smtp = SmtpSink::start(env.dir(), port);
    let m = env.scheduler_job("mail", t1 + Duration::seconds(60));
    assert_eq!(
        (count_of(&m, "sent"), count_of(&m, "failed")),
        (0, 0),
        "{m}"
    );
    assert!(smtp.messages().is_empty());
    let t2 = t1 + Duration::seconds(121);
    let m = env.scheduler_job("mail", t2);
    assert_eq!(count_of(&m, "sent"), 1, "{m}");
    let m = env.scheduler_job("mail", t2 + Duration::hours(1));
    assert_eq!(count_of(&m, "sent"), 0, "{m}");
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["rcpt_tos"], json!([id.email.clone()]));
    assert!(str_field(&msgs[0], "message_id").contains(".90d@"));
    let r = &reminders_of(env, &card.number)[0];
    assert_eq!(r["state"], "sent");
    assert_eq!(r["attempts"], 3);
    assert_eq!(r["sent_at"], rfc3339(t2));
    env.audit_verify_ok();
}

/// Scenario 3b: after `max_attempts` failures the reminder is dead
/// (audited), and a relay that comes back later does not send it.
fn repeated_failures_end_in_the_dead_letter_state(env: &TestEnv) {
    env.init();
    let port = free_port();
    env.set_mail(port, "retry_base_seconds = 10\nmax_attempts = 3");
    let id = Identity::national("MC40000001");
    let card = Card::identity("ID400000001", &id.registry_key);
    card_with_certificates(env, &id, &card);
    let end = card.expected_not_after();
    let mut t = end - Duration::days(25);

    let d = env.scheduler_job("reminders", t);
    assert_eq!(count_of(&d, "decided_email"), 1, "{d}");
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        let m = env.scheduler_job("mail", t);
        let r = reminders_of(env, &card.number).remove(0);
        assert_eq!(r["attempts"], attempt, "{r}");
        if attempt < 3 {
            assert_eq!(count_of(&m, "failed"), 1, "{m}");
            assert_eq!(r["state"], "pending");
            let next = chrono::DateTime::parse_from_rfc3339(str_field(&r, "next_attempt_at"))
                .expect("next_attempt_at")
                .with_timezone(&Utc);
            delays.push((next - t).num_seconds());
            t = next;
        } else {
            assert_eq!(
                (count_of(&m, "failed"), count_of(&m, "dead")),
                (0, 1),
                "{m}"
            );
            assert_eq!(r["state"], "dead");
            assert!(r["last_error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
    assert_eq!(delays, vec![10, 20], "exponential back-off");
    let audit = env.audit_list();
    let dead: Vec<&Value> = audit
        .iter()
        .filter(|r| r["action"] == "reminder.dead")
        .collect();
    assert_eq!(dead.len(), 1, "one reminder.dead record");
    assert_eq!(dead[0]["subject"], card.number.as_str());

    let smtp = SmtpSink::start(env.dir(), port);
    let m = env.scheduler_job("mail", t + Duration::days(1));
    assert_eq!(count_of(&m, "sent"), 0, "{m}");
    assert!(smtp.messages().is_empty());
    let dead = as_array(
        env.ok_json(&["reminders", "list", "--state", "dead", "--json"]),
        "reminders list",
    );
    assert_eq!(dead.len(), 1);
    env.audit_verify_ok();
}

/// Scenario 4: when the certificates end with the card, the message asks
/// for a new card (not the kiosk). Suspended certificates get no reminder.
fn certificates_ending_with_the_card_ask_for_a_new_card(env: &TestEnv) {
    env.init();
    let smtp = SmtpSink::start(env.dir(), free_port());
    env.set_mail(smtp.port, "");
    let id = Identity::national("MC50000001");
    let card = Card::identity("ID500000001", &id.registry_key)
        .dates(days_ago(400), today() + Duration::days(200));
    card_with_certificates(env, &id, &card);
    let end = card.expected_not_after();
    assert_eq!(
        end,
        (card.expires + Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            - Duration::seconds(1),
        "the card's expiry comes before issue + 3 years"
    );
    // Another holder, same end, whose certificates are suspended.
    let other = Identity::national("MC50000002");
    let other_card = Card::identity("ID500000002", &other.registry_key)
        .dates(days_ago(400), today() + Duration::days(200));
    card_with_certificates(env, &other, &other_card);
    env.ok(&["suspend", "--card", &other_card.number]);

    let (d, m) = run_jobs(env, end - Duration::days(6));
    assert_eq!(
        count_of(&d, "examined"),
        2,
        "only the active certificates: {d}"
    );
    assert_eq!(count_of(&d, "decided_email"), 1, "{d}");
    assert_eq!(count_of(&m, "sent"), 1, "{m}");
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1);
    let msg = &msgs[0];
    assert_eq!(msg["rcpt_tos"], json!([id.email.clone()]));
    let subject = str_field(msg, "subject");
    assert!(
        subject.contains("renouvelez-la") && subject.contains("renew it"),
        "{subject}"
    );
    let body = str_field(msg, "body");
    for needle in [
        "fin de validité de votre carte d'identité",
        "demandez le renouvellement de votre carte",
        "la Mairie",
        "apply for a new card",
        "Town Hall",
        card.number.as_str(),
    ] {
        assert!(body.contains(needle), "body lacks {needle:?}:\n{body}");
    }
    assert!(
        !body.contains("borne libre-service") && !body.contains("pki.example.com/eid/renew"),
        "no kiosk renewal when the card ends:\n{body}"
    );
    assert!(str_field(msg, "message_id").contains(".7d@"));
    assert!(reminders_of(env, &other_card.number).is_empty());
}

e2e_test!(
    one_mail_per_offset_and_never_twice,
    holders_without_email_get_a_letter,
    a_relay_that_is_down_means_retries,
    repeated_failures_end_in_the_dead_letter_state,
    certificates_ending_with_the_card_ask_for_a_new_card,
);
