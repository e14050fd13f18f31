//! Validator conduct: proven misbehaviour on record.
//!
//! `ReportMisbehaviour` records that a validator signed conflicting votes in a consensus view. The
//! proof (both signed votes) is a block-validity rule of the chain layer, which holds the validator
//! set's keys: a node admits the transaction, and accepts a block holding it, only if the proof
//! verifies and names that validator and view. The ledger keeps one record per validator and view,
//! emits an event, and slashes `misbehaviour_slash_bps` of the validator's stake (its `validator`
//! bond plus pending unbondings, so unbonding does not escape) to the reporter. Validators bond at
//! genesis; the bond is collateral, not (yet) what selects the validator set.

use crate::{error::ExecutionError, royalty::apply_bps, stake, state::State};
use tributary_types::{Address, Event, Params, Role};

/// Records misbehaviour of `validator` in `view`, reported by `reporter`, and slashes.
pub(crate) fn report(
    state: &mut State,
    params: &Params,
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
    let staked = stake::staked(state, &validator, Role::Validator);
    let penalty = apply_bps(staked, params.misbehaviour_slash_bps);
    if penalty > 0 {
        stake::slash(state, validator, Role::Validator, penalty, reporter, events)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_types::Params;

    #[test]
    fn one_record_per_validator_and_view() {
        let params = Params::devnet("test");
        let mut state = State::new(&params);
        let validator = Address([7; 32]);
        let reporter = Address([8; 32]);
        let mut events = Vec::new();
        report(&mut state, &params, reporter, validator, 3, &mut events).unwrap();
        assert_eq!(events.len(), 1, "no stake, nothing slashed");
        let error = report(&mut state, &params, reporter, validator, 3, &mut events).unwrap_err();
        assert_eq!(error.code(), "misbehaviour_already_reported");
        report(&mut state, &params, reporter, validator, 4, &mut events).unwrap();
        assert_eq!(state.misbehaviour.len(), 2);
    }

    #[test]
    fn each_report_slashes_a_share_of_the_stake_to_the_reporter() {
        let params = Params::devnet("test");
        let mut state = State::new(&params);
        let validator = Address([7; 32]);
        let reporter = Address([8; 32]);
        state.set_bond(validator, Role::Validator, 600);
        // 200 of it is unbonding: it cannot escape the slash.
        state.set_unbonding(50, validator, Role::Validator, 200);
        let mut events = Vec::new();
        report(&mut state, &params, reporter, validator, 3, &mut events).unwrap();
        // Half of 800.
        assert_eq!(state.account(&reporter).balance, 400);
        assert!(matches!(
            events.last(),
            Some(Event::Slashed {
                amount: 400,
                role: Role::Validator,
                ..
            })
        ));
        report(&mut state, &params, reporter, validator, 4, &mut events).unwrap();
        assert_eq!(state.account(&reporter).balance, 600);
        assert_eq!(stake::staked(&state, &validator, Role::Validator), 200);
    }
}
