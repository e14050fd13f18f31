//! Validator conduct: proven misbehaviour on record.
//!
//! `ReportMisbehaviour` records that a validator signed conflicting votes in a consensus view. The
//! proof (both signed votes) is a block-validity rule of the chain layer, which holds the validator
//! set's keys: a node admits the transaction, and accepts a block holding it, only if the proof
//! verifies and names that validator and view. The ledger keeps one record per validator and view
//! and emits an event. Slashing follows once validators stake (`stake::slash` is the hook: a
//! validator role's bond, when it exists, is what a recorded fault takes from).

use crate::{error::ExecutionError, state::State};
use tributary_types::{Address, Event};

/// Records misbehaviour of `validator` in `view`, reported by `reporter`.
pub(crate) fn report(
    state: &mut State,
    reporter: Address,
    validator: Address,
    view: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    if state.misbehaviour.contains_key(&(validator, view)) {
        return Err(ExecutionError::MisbehaviourAlreadyReported { validator, view });
    }
    state.set_misbehaviour(validator, view, reporter);
    events.push(Event::MisbehaviourReported {
        validator,
        view,
        reporter,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_types::Params;

    #[test]
    fn one_record_per_validator_and_view() {
        let mut state = State::new(&Params::devnet("test"));
        let validator = Address([7; 32]);
        let reporter = Address([8; 32]);
        let mut events = Vec::new();
        report(&mut state, reporter, validator, 3, &mut events).unwrap();
        assert_eq!(events.len(), 1);
        let error = report(&mut state, reporter, validator, 3, &mut events).unwrap_err();
        assert_eq!(error.code(), "misbehaviour_already_reported");
        report(&mut state, reporter, validator, 4, &mut events).unwrap();
        assert_eq!(state.misbehaviour.len(), 2);
    }
}
