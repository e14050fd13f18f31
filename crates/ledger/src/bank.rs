//! bank: balances, transfers, fees. Every movement is a debit matched by a credit, so total supply is
//! conserved exactly.

use crate::{error::ExecutionError, state::State};
use tributary_types::{Address, Amount, Event};

/// Adds `amount` to `account`'s balance.
pub(crate) fn credit(
    state: &mut State,
    account: Address,
    amount: Amount,
) -> Result<(), ExecutionError> {
    if amount == 0 {
        return Ok(());
    }
    let mut record = state.account(&account);
    record.balance = record
        .balance
        .checked_add(amount)
        .ok_or(ExecutionError::Overflow)?;
    state.set_account(account, record);
    Ok(())
}

/// Takes `amount` from `account`'s balance.
pub(crate) fn debit(
    state: &mut State,
    account: Address,
    amount: Amount,
) -> Result<(), ExecutionError> {
    if amount == 0 {
        return Ok(());
    }
    let mut record = state.account(&account);
    record.balance =
        record
            .balance
            .checked_sub(amount)
            .ok_or(ExecutionError::InsufficientBalance {
                account,
                balance: record.balance,
                needed: amount,
            })?;
    state.set_account(account, record);
    Ok(())
}

/// `Transfer`: moves `amount` from `from` to `to` (a zero amount, or a transfer to oneself, is allowed and
/// changes nothing).
pub(crate) fn transfer(
    state: &mut State,
    from: Address,
    to: Address,
    amount: Amount,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    debit(state, from, amount)?;
    credit(state, to, amount)?;
    events.push(Event::Transferred { from, to, amount });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_types::Params;

    #[test]
    fn transfer_insufficient_balance_fails() {
        let mut state = State::new(&Params::devnet("t"));
        let a = Address([1; 32]);
        let b = Address([2; 32]);
        credit(&mut state, a, 5).unwrap();
        let mut events = Vec::new();
        let error = transfer(&mut state, a, b, 6, &mut events).unwrap_err();
        assert_eq!(
            error,
            ExecutionError::InsufficientBalance {
                account: a,
                balance: 5,
                needed: 6
            }
        );
        assert_eq!(error.code(), "insufficient_balance");
        transfer(&mut state, a, b, 5, &mut events).unwrap();
        assert_eq!(state.account(&b).balance, 5);
        assert_eq!(state.account(&a).balance, 0);
    }

    #[test]
    fn credit_overflow_is_an_error() {
        let mut state = State::new(&Params::devnet("t"));
        let a = Address([1; 32]);
        credit(&mut state, a, u128::MAX).unwrap();
        assert_eq!(credit(&mut state, a, 1), Err(ExecutionError::Overflow));
    }
}
