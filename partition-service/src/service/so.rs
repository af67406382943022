//! The device SOs' registry (cards of at least two people) and whether card sets may hold
//! soft cards: the HSM owner's settings.

use super::*;

impl Hsm {
    /// Registers an SO card, belonging to one named person.
    pub fn add_so_card(&self, card: CardDescription) -> Result<SoRegistry, ServiceError> {
        self.store.write(|tx| {
            let mut registry = tx.so_registry()?;
            if registry
                .cards
                .iter()
                .any(|c| c.signing_key == card.signing_key)
            {
                return Err(ServiceError::SoCard("this key is registered already"));
            }
            if registry.cards.iter().any(|c| c.serial == card.serial) {
                return Err(ServiceError::SoCard(
                    "a card with this serial is registered already",
                ));
            }
            if registry.cards.len() >= hsm_link::domain::MAX_CARDS_PER_SET {
                return Err(ServiceError::SoCard("the SO registry is full (16 cards)"));
            }
            registry.cards.push(card);
            registry.threshold = registry.threshold.max(2);
            tx.put_so_registry(&registry)?;
            Ok(registry)
        })
    }

    /// Sets how many SO cards (of at least two people) an SO session needs: 2 or more.
    pub fn set_so_threshold(&self, threshold: u8) -> Result<SoRegistry, ServiceError> {
        if threshold < 2 {
            return Err(ServiceError::SoCard(
                "four eyes: the SO threshold is at least 2",
            ));
        }
        self.store.write(|tx| {
            let mut registry = tx.so_registry()?;
            if usize::from(threshold) > registry.cards.len() {
                return Err(ServiceError::SoCard(
                    "the threshold exceeds the registered SO cards",
                ));
            }
            registry.threshold = threshold;
            tx.put_so_registry(&registry)?;
            Ok(registry)
        })
    }

    /// The SO registry.
    pub fn so_registry(&self) -> Result<SoRegistry, ServiceError> {
        self.store.read(|tx| Ok(tx.so_registry()?))
    }

    /// Whether card sets may hold soft cards (the HSM owner's choice; no by default). Sets
    /// registered before a change keep their cards.
    pub fn soft_cards_allowed(&self) -> Result<bool, ServiceError> {
        self.store.read(|tx| Ok(tx.soft_cards_allowed()?))
    }

    /// Allows or refuses soft cards in card sets registered from now on (the demo and test
    /// HSMs allow them; a production HSM should not). A change is logged in every partition's
    /// log, in the transaction that makes it, as the HSM owner's (`hsm.soft-cards`): if a
    /// partition's log cannot take the entry, nothing changes.
    pub fn set_soft_cards_allowed(&self, allowed: bool) -> Result<(), ServiceError> {
        self.store.write(|tx| {
            if tx.soft_cards_allowed()? == allowed {
                return Ok(());
            }
            tx.put_soft_cards_allowed(allowed)?;
            for mut record in tx.partitions()? {
                let event = Event::new(genesis(), KnownOperation::HsmSoftCards)
                    .detail("soft-cards", if allowed { "allowed" } else { "refused" });
                self.append(tx, &mut record, event)?;
                tx.put_partition(&record)?;
            }
            Ok(())
        })
    }

    /// The SO registry as a card set, for logins.
    pub(crate) fn so_set(
        &self,
    ) -> Result<Option<hsm_link::domain::CardSetDescription>, ServiceError> {
        let registry = self.so_registry()?;
        if registry.cards.len() < 2 {
            return Ok(None);
        }
        Ok(Some(hsm_link::domain::CardSetDescription {
            kind: CardSetKind::DeviceSo,
            set_number: 1,
            threshold: registry.threshold.max(2),
            cards: registry.cards,
        }))
    }
}
