//! What a reminder says: its subject and body, French first then English,
//! composed at decision time, and the Message-ID of its e-mail, derived
//! from the reminder's key only.

use super::ReminderKey;
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use pki_store::storage::models::{CardRow, IdentityRow};

/// The Message-ID of a reminder's e-mail (with its angle brackets): the
/// same for every delivery attempt of the same reminder, so that a message
/// sent twice (crash after the relay accepted it) can be deduplicated.
pub fn message_id(key: &ReminderKey, domain: &str) -> String {
    format!(
        "<eid-reminder.{}.{}.{}d@{}>",
        key.card_number.to_ascii_lowercase(),
        key.not_after.format("%Y%m%dT%H%M%SZ"),
        key.offset_days,
        domain
    )
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
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn date_fr(d: NaiveDate) -> String {
    let day = if d.day() == 1 {
        "1er".to_string()
    } else {
        d.day().to_string()
    };
    format!("{day} {} {}", MONTHS_FR[d.month0() as usize], d.year())
}

fn date_en(d: NaiveDate) -> String {
    format!(
        "{} {} {}",
        d.day(),
        MONTHS_EN[d.month0() as usize],
        d.year()
    )
}

fn usages_fr(usages: &[String]) -> String {
    let words: Vec<&str> = usages
        .iter()
        .map(|u| match u.as_str() {
            "auth" => "authentification",
            "sign" => "signature",
            "mobile-auth" => "identité mobile",
            other => other,
        })
        .collect();
    words.join(", ")
}

fn usages_en(usages: &[String]) -> String {
    let words: Vec<&str> = usages
        .iter()
        .map(|u| match u.as_str() {
            "auth" => "authentication",
            "sign" => "signature",
            "mobile-auth" => "mobile identity",
            other => other,
        })
        .collect();
    words.join(", ")
}

/// Composes the bilingual messages.
pub(super) struct Texts<'a> {
    pub(super) kiosk_url: &'a str,
}

impl Texts<'_> {
    /// (subject, body) of a reminder: French first, then English.
    pub(super) fn compose(
        &self,
        card: &CardRow,
        holder: &IdentityRow,
        end: NaiveDateTime,
        usages: &[String],
        renew_card: bool,
    ) -> (String, String) {
        let day = end.date();
        let iso = day.format("%Y-%m-%d");
        let n = &card.card_number;
        let (card_fr, card_en, office_fr, office_en) = match card.kind.as_str() {
            "residence" => (
                "carte de résident",
                "residence card",
                "la Direction de la Sûreté Publique (section des résidents)",
                "the Public Safety Directorate (residents section)",
            ),
            _ => (
                "carte d'identité",
                "identity card",
                "la Mairie (état civil)",
                "the Town Hall (civil status office)",
            ),
        };
        let subject = if renew_card {
            format!(
                "Votre {card_fr} n° {n} expire le {iso} : renouvelez-la / \
                 Your {card_en} no. {n} expires on {iso}: renew it"
            )
        } else {
            format!(
                "Vos certificats eID (carte n° {n}) expirent le {iso} / \
                 Your eID certificates (card no. {n}) expire on {iso}"
            )
        };
        let name = format!("{} {}", holder.given_names, holder.family_name);
        let (what_fr, what_en) = if renew_card {
            (
                format!(
                    "Cette date est aussi la fin de validité de votre {card_fr} : les certificats ne \
                     peuvent pas être prolongés sur cette carte. Pour conserver votre identité \
                     numérique, demandez le renouvellement de votre carte auprès de {office_fr}. \
                     La nouvelle carte portera de nouveaux certificats."
                ),
                format!(
                    "This is also the end of your {card_en}: the certificates cannot be extended on \
                     this card. To keep your digital identity, apply for a new card at {office_en}. \
                     The new card will carry new certificates."
                ),
            )
        } else {
            (
                format!(
                    "Le renouvellement prend quelques minutes à une borne libre-service, avec votre \
                     carte et son code PIN. Informations : {}",
                    self.kiosk_url
                ),
                format!(
                    "Renewal takes a few minutes at a self-service kiosk, with your card and its \
                     PIN. Information: {}",
                    self.kiosk_url
                ),
            )
        };
        let body = format!(
            "Bonjour {name},\n\
             \n\
             Les certificats électroniques ({ufr}) de votre {card_fr} n° {n} expirent le {dfr} \
             ({iso}, 23:59:59 UTC au plus tard).\n\
             \n\
             {what_fr}\n\
             \n\
             Ce message est envoyé automatiquement ; merci de ne pas y répondre.\n\
             \n\
             ----------------------------------------------------------------------\n\
             \n\
             Dear {name},\n\
             \n\
             The electronic certificates ({uen}) of your {card_en} no. {n} expire on {den} \
             ({iso}, 23:59:59 UTC at the latest).\n\
             \n\
             {what_en}\n\
             \n\
             This message was sent automatically; please do not reply.\n",
            ufr = usages_fr(usages),
            uen = usages_en(usages),
            dfr = date_fr(day),
            den = date_en(day),
        );
        (subject, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::test_fixture::t;

    #[test]
    fn message_ids_depend_only_on_the_key() {
        let key = ReminderKey {
            card_number: "ID000000001".into(),
            not_after: t("2030-06-30 23:59:59"),
            offset_days: 30,
        };
        let id = message_id(&key, "pki.example.com");
        assert_eq!(
            id,
            "<eid-reminder.id000000001.20300630T235959Z.30d@pki.example.com>"
        );
        assert_eq!(id, message_id(&key.clone(), "pki.example.com"));
    }

    #[test]
    fn french_dates() {
        let d = NaiveDate::from_ymd_opt(2027, 8, 1).unwrap();
        assert_eq!(date_fr(d), "1er août 2027");
        assert_eq!(date_en(d), "1 August 2027");
    }
}
