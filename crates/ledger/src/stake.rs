//! stake: an escrow other modules build on. `Bond` moves balance into a per-role bond, `Unbond` moves it
//! into an unbonding entry released to the balance at the start of block `height + unbonding_delay_blocks`,
//! and [`crate::Ledger::slash`] lets modules take stake (bond first, then unbonding entries, latest first,
//! so unbonding does not escape a slash) and pay it to a beneficiary.

use crate::{Ledger, bank, error::ExecutionError, state::State};
use tributary_types::{Address, Amount, Event, Role};

/// `Bond`.
pub(crate) fn bond(
    state: &mut State,
    account: Address,
    role: Role,
    amount: Amount,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    if amount == 0 {
        return Err(ExecutionError::ZeroAmount);
    }
    bank::debit(state, account, amount)?;
    let bonded = state
        .bond(&account, role)
        .checked_add(amount)
        .ok_or(ExecutionError::Overflow)?;
    state.set_bond(account, role, bonded);
    events.push(Event::Bonded {
        account,
        role,
        amount,
    });
    Ok(())
}

/// `Unbond`: starts releasing `amount`, available at the start of block `height + delay`.
pub(crate) fn unbond(
    state: &mut State,
    account: Address,
    role: Role,
    amount: Amount,
    delay: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    if amount == 0 {
        return Err(ExecutionError::ZeroAmount);
    }
    let bonded = state.bond(&account, role);
    let remaining = bonded
        .checked_sub(amount)
        .ok_or(ExecutionError::InsufficientBond {
            role,
            bonded,
            requested: amount,
        })?;
    state.set_bond(account, role, remaining);
    let release_height = state
        .height
        .checked_add(delay)
        .ok_or(ExecutionError::Overflow)?;
    let pending = state
        .unbondings
        .get(&(release_height, account, role))
        .copied()
        .unwrap_or(0);
    let pending = pending
        .checked_add(amount)
        .ok_or(ExecutionError::Overflow)?;
    state.set_unbonding(release_height, account, role, pending);
    events.push(Event::UnbondStarted {
        account,
        role,
        amount,
        release_height,
    });
    Ok(())
}

/// Releases every unbonding whose release height is at or below the state's height.
pub(crate) fn release_matured(
    state: &mut State,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let height = state.height;
    let matured: Vec<((u64, Address, Role), Amount)> = state
        .unbondings
        .iter()
        .take_while(|((release_height, _, _), _)| *release_height <= height)
        .map(|(key, amount)| (*key, *amount))
        .collect();
    for ((release_height, account, role), amount) in matured {
        state.set_unbonding(release_height, account, role, 0);
        bank::credit(state, account, amount)?;
        events.push(Event::UnbondReleased {
            account,
            role,
            amount,
        });
    }
    Ok(())
}

/// `account`'s whole stake for `role`: its bond plus its pending unbondings.
pub(crate) fn staked(state: &State, account: &Address, role: Role) -> Amount {
    let unbonding = state
        .unbondings
        .iter()
        .filter(|((_, owner, entry_role), _)| owner == account && *entry_role == role)
        .fold(0u128, |sum, (_, amount)| sum.saturating_add(*amount));
    state.bond(account, role).saturating_add(unbonding)
}

/// Takes up to `amount` of `account`'s stake for `role` and credits it to `beneficiary`. Returns the amount
/// taken (less than `amount` when the stake is smaller).
pub(crate) fn slash(
    state: &mut State,
    account: Address,
    role: Role,
    amount: Amount,
    beneficiary: Address,
    events: &mut Vec<Event>,
) -> Result<Amount, ExecutionError> {
    let bonded = state.bond(&account, role);
    let from_bond = bonded.min(amount);
    state.set_bond(account, role, bonded - from_bond);
    let mut taken = from_bond;
    if taken < amount {
        let entries: Vec<((u64, Address, Role), Amount)> = state
            .unbondings
            .iter()
            .rev()
            .filter(|((_, owner, entry_role), _)| *owner == account && *entry_role == role)
            .map(|(key, value)| (*key, *value))
            .collect();
        for ((release_height, _, _), pending) in entries {
            let wanted = amount - taken;
            let part = pending.min(wanted);
            state.set_unbonding(release_height, account, role, pending - part);
            taken += part;
            if taken == amount {
                break;
            }
        }
    }
    bank::credit(state, beneficiary, taken)?;
    if taken > 0 {
        events.push(Event::Slashed {
            account,
            role,
            amount: taken,
            beneficiary,
        });
    }
    Ok(taken)
}

impl Ledger {
    /// For modules (not a transaction): takes up to `amount` of `account`'s stake for `role` (bond first,
    /// then pending unbondings, latest first) and pays it to `beneficiary`. Returns the amount taken and
    /// the `Slashed` event (absent when nothing was taken). Atomic: on error nothing changes.
    pub fn slash(
        &mut self,
        account: Address,
        role: Role,
        amount: Amount,
        beneficiary: Address,
    ) -> Result<(Amount, Option<Event>), ExecutionError> {
        let mut work = self.state.clone();
        let mut events = Vec::new();
        let taken = slash(&mut work, account, role, amount, beneficiary, &mut events)?;
        work.flush();
        self.state = work;
        Ok((taken, events.pop()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_types::Params;

    fn funded() -> (State, Address) {
        let mut state = State::new(&Params::devnet("t"));
        let a = Address([1; 32]);
        bank::credit(&mut state, a, 100).unwrap();
        (state, a)
    }

    #[test]
    fn bond_errors() {
        let (mut state, a) = funded();
        let mut events = Vec::new();
        assert_eq!(
            bond(&mut state, a, Role::Verifier, 0, &mut events),
            Err(ExecutionError::ZeroAmount)
        );
        assert!(matches!(
            bond(&mut state, a, Role::Verifier, 101, &mut events),
            Err(ExecutionError::InsufficientBalance { .. })
        ));
        bond(&mut state, a, Role::Verifier, 40, &mut events).unwrap();
        assert_eq!(state.bond(&a, Role::Verifier), 40);
        assert_eq!(state.account(&a).balance, 60);
    }

    #[test]
    fn unbond_errors_and_release() {
        let (mut state, a) = funded();
        let mut events = Vec::new();
        bond(&mut state, a, Role::StorageProvider, 40, &mut events).unwrap();
        assert_eq!(
            unbond(&mut state, a, Role::StorageProvider, 0, 5, &mut events),
            Err(ExecutionError::ZeroAmount)
        );
        assert_eq!(
            unbond(&mut state, a, Role::StorageProvider, 41, 5, &mut events),
            Err(ExecutionError::InsufficientBond {
                role: Role::StorageProvider,
                bonded: 40,
                requested: 41
            })
        );
        assert!(matches!(
            unbond(&mut state, a, Role::Verifier, 1, 5, &mut events),
            Err(ExecutionError::InsufficientBond { .. })
        ));
        unbond(&mut state, a, Role::StorageProvider, 30, 5, &mut events).unwrap();
        state.height = 4;
        release_matured(&mut state, &mut events).unwrap();
        assert_eq!(state.account(&a).balance, 60);
        state.height = 5;
        release_matured(&mut state, &mut events).unwrap();
        assert_eq!(state.account(&a).balance, 90);
        assert!(state.unbondings.is_empty());
    }

    #[test]
    fn slash_takes_bond_then_unbonding_and_caps_at_stake() {
        let (mut state, a) = funded();
        let b = Address([2; 32]);
        let mut events = Vec::new();
        bond(&mut state, a, Role::ComputeProvider, 50, &mut events).unwrap();
        unbond(&mut state, a, Role::ComputeProvider, 20, 5, &mut events).unwrap();
        assert_eq!(
            slash(&mut state, a, Role::ComputeProvider, 40, b, &mut events),
            Ok(40)
        );
        assert_eq!(state.bond(&a, Role::ComputeProvider), 0);
        assert_eq!(state.unbondings.values().copied().sum::<u128>(), 10);
        assert_eq!(
            slash(&mut state, a, Role::ComputeProvider, 40, b, &mut events),
            Ok(10)
        );
        assert_eq!(
            slash(&mut state, a, Role::ComputeProvider, 40, b, &mut events),
            Ok(0)
        );
        assert_eq!(state.account(&b).balance, 50);
    }

    #[test]
    fn slash_overflowing_beneficiary_is_an_error() {
        let (mut state, a) = funded();
        let b = Address([2; 32]);
        let mut events = Vec::new();
        bond(&mut state, a, Role::Verifier, 10, &mut events).unwrap();
        bank::credit(&mut state, b, u128::MAX).unwrap();
        assert_eq!(
            slash(&mut state, a, Role::Verifier, 10, b, &mut events),
            Err(ExecutionError::Overflow)
        );
    }
}
