"""Run budgets: a run's running totals of tokens and cost, and what happens on a breach.

A run started with ``budget_tokens`` or ``budget_usd`` keeps totals over all its calls,
across steps and retries, as their usage is recorded:

- tokens = input + output of each model call, as recorded (re-ingested tokens are already
  part of the input and are not added again; tool calls have no tokens);
- cost = the reported cost of each model or tool call, else the price that genai-prices (the
  library the collector prices with) gives for the call's model and tokens. A call whose
  price is unknown adds nothing and is counted in ``unpriced_calls``: the cost total is then
  a lower bound, as in the collector.

A call that records its usage again replaces what it recorded before. The first time a total
goes over its ceiling (strictly more than the budget), the run span gets an
``agentledger.budget.exceeded`` event and the run's policy applies: ``"warn"`` (the default)
logs a warning, a callable is called with the :class:`BudgetBreach`, and ``"raise"`` raises
:class:`BudgetExceeded` from the recording call that crossed the ceiling. That is the one
exception the SDK raises into agent code, and only when the author asked for it. Each
ceiling is reported once per run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from agentledger.schemas import attributes as attr

if TYPE_CHECKING:
    from opentelemetry.trace import Span

logger = logging.getLogger(__name__)

POLICY_WARN: Final = "warn"
POLICY_RAISE: Final = "raise"
POLICY_CALLBACK: Final = "callback"

Limit: TypeAlias = Literal["tokens", "usd"]


@dataclass(frozen=True, slots=True)
class BudgetBreach:
    """A run's totals at the moment they first went over one of its ceilings.

    Attributes:
        limit: the ceiling crossed: ``"tokens"`` or ``"usd"``.
        tokens: input + output tokens of the run's calls so far.
        cost_usd: known cost of the run's calls so far.
        unpriced_calls: calls whose price is unknown, left out of ``cost_usd``.
    """

    run_id: str
    workflow: str
    limit: Limit
    budget_tokens: int | None
    budget_usd: Decimal | None
    tokens: int
    cost_usd: Decimal
    unpriced_calls: int

    @property
    def budget(self) -> int | Decimal:
        """The ceiling that was crossed."""
        if self.limit == attr.BUDGET_LIMIT_TOKENS:
            assert self.budget_tokens is not None
            return self.budget_tokens
        assert self.budget_usd is not None
        return self.budget_usd

    @property
    def actual(self) -> int | Decimal:
        """The run's total on the crossed ceiling's measure."""
        return self.tokens if self.limit == attr.BUDGET_LIMIT_TOKENS else self.cost_usd

    def describe(self) -> str:
        """One line for logs and messages."""
        if self.limit == attr.BUDGET_LIMIT_TOKENS:
            over = f"{self.tokens:,} tokens > budget {self.budget_tokens:,}"
        else:
            over = f"${self.cost_usd} > budget ${self.budget_usd}"
            if self.unpriced_calls:
                over += f" ({self.unpriced_calls} unpriced calls not counted)"
        return f"run {self.run_id} of workflow {self.workflow!r} is over its budget: {over}"


class BudgetExceeded(Exception):
    """A run went over its token or cost budget, and its policy is ``"raise"``.

    Raised from the ``record_usage`` (or ``record_cost``) call that crossed the ceiling,
    after that call's usage was recorded. Catch it to stop the run or hand it to a human.
    """

    def __init__(self, breach: BudgetBreach) -> None:
        super().__init__(breach.describe())
        self.breach = breach

    @property
    def run_id(self) -> str:
        return self.breach.run_id

    @property
    def limit(self) -> Limit:
        return self.breach.limit

    @property
    def budget(self) -> int | Decimal:
        return self.breach.budget

    @property
    def actual(self) -> int | Decimal:
        return self.breach.actual

    @property
    def tokens(self) -> int:
        return self.breach.tokens

    @property
    def cost_usd(self) -> Decimal:
        return self.breach.cost_usd


BudgetPolicy: TypeAlias = Literal["warn", "raise"] | Callable[[BudgetBreach], object]


def check_policy(policy: object) -> BudgetPolicy:
    """The policy, or ``"warn"`` with a warning logged when it is not one."""
    if policy in (POLICY_WARN, POLICY_RAISE) or callable(policy):
        return policy  # type: ignore[return-value]
    logger.warning(
        "agentledger: invalid value dropped: on_budget=%r; accepted: 'warn', 'raise' or a "
        "callable taking a BudgetBreach; warning on breach instead",
        policy,
    )
    return POLICY_WARN


@dataclass(frozen=True, slots=True)
class _Charge:
    tokens: int
    cost_usd: Decimal
    unpriced: bool


class RunBudget:
    """The running totals and ceilings of one run; made by the run when it has a budget.

    Safe to share between threads: calls of one run may record usage from several.
    """

    def __init__(
        self,
        *,
        run_id: str,
        workflow: str,
        span: Span,
        budget_tokens: int | None,
        budget_usd: float | None,
        policy: BudgetPolicy,
        prices: Prices | None = None,
    ) -> None:
        self._run_id = run_id
        self._workflow = workflow
        self._span = span
        self._budget_tokens = budget_tokens
        # Through str() so that 0.1 is the budget the author wrote, not its binary neighbour.
        self._budget_usd = Decimal(str(budget_usd)) if budget_usd is not None else None
        self._policy = policy
        self._prices = prices if prices is not None else DEFAULT_PRICES
        self._charges: dict[object, _Charge] = {}
        self._tokens = 0
        self._cost = Decimal(0)
        self._unpriced = 0
        self._reported: set[Limit] = set()
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        """Input + output tokens recorded so far."""
        return self._tokens

    @property
    def cost_usd(self) -> Decimal:
        """Known cost recorded so far (0 when the run has no cost budget: not tracked)."""
        return self._cost

    @property
    def unpriced_calls(self) -> int:
        return self._unpriced

    def charge(self, key: object, attributes: Mapping[str, Any]) -> None:
        """Count a call's usage as now recorded in ``attributes``, replacing its earlier count.

        Raises:
            BudgetExceeded: this charge took a total over its ceiling and the policy is
                ``"raise"``.
        """
        breaches: list[BudgetBreach] = []
        try:
            charge = self._measure(attributes)
            with self._lock:
                previous = self._charges.get(key)
                self._charges[key] = charge
                if previous is not None:
                    self._tokens -= previous.tokens
                    self._cost -= previous.cost_usd
                    self._unpriced -= previous.unpriced
                self._tokens += charge.tokens
                self._cost += charge.cost_usd
                self._unpriced += charge.unpriced
                breaches = self._new_breaches()
            for breach in breaches:
                self._record(breach)
        except Exception:  # broad: budget bookkeeping must never fail the agent
            logger.warning(
                "agentledger: budget of run %s could not count a call; not counted",
                self._run_id,
                exc_info=True,
            )
            return
        for breach in breaches:
            self._apply(breach)

    # --- internals -------------------------------------------------------------------------

    def _measure(self, attributes: Mapping[str, Any]) -> _Charge:
        is_llm = attributes.get(attr.SPAN_KIND) != attr.KIND_TOOL
        inputs = _int(attributes.get(attr.INPUT_TOKENS))
        outputs = _int(attributes.get(attr.OUTPUT_TOKENS))
        tokens = inputs + outputs if is_llm else 0
        if self._budget_usd is None:
            return _Charge(tokens, Decimal(0), False)

        reported = attributes.get(attr.COST_USD)
        if reported is not None:
            return _Charge(tokens, Decimal(str(reported)), False)
        has_usage = attr.INPUT_TOKENS in attributes or attr.OUTPUT_TOKENS in attributes
        if not is_llm or not has_usage:
            return _Charge(tokens, Decimal(0), False)  # a free tool, or no usage yet
        model = attributes.get(attr.RESPONSE_MODEL) or attributes.get(attr.REQUEST_MODEL)
        price = self._prices.price(
            str(model or ""),
            str(attributes.get(attr.PROVIDER_NAME) or ""),
            input_tokens=inputs,
            output_tokens=outputs,
            cache_read_tokens=_int(attributes.get(attr.CACHE_READ_TOKENS)),
            cache_write_tokens=_int(attributes.get(attr.CACHE_WRITE_TOKENS)),
        )
        if price is None:
            return _Charge(tokens, Decimal(0), True)
        return _Charge(tokens, price, False)

    def _new_breaches(self) -> list[BudgetBreach]:
        crossed: list[Limit] = []
        if self._budget_tokens is not None and self._tokens > self._budget_tokens:
            crossed.append("tokens")
        if self._budget_usd is not None and self._cost > self._budget_usd:
            crossed.append("usd")
        fresh = [limit for limit in crossed if limit not in self._reported]
        self._reported.update(fresh)
        return [
            BudgetBreach(
                run_id=self._run_id,
                workflow=self._workflow,
                limit=limit,
                budget_tokens=self._budget_tokens,
                budget_usd=self._budget_usd,
                tokens=self._tokens,
                cost_usd=self._cost,
                unpriced_calls=self._unpriced,
            )
            for limit in fresh
        ]

    def _record(self, breach: BudgetBreach) -> None:
        if not self._span.is_recording():
            logger.warning(
                "agentledger: run span has ended; budget event dropped: %s", breach.describe()
            )
            return
        event: dict[str, Any] = {
            attr.BUDGET_LIMIT: breach.limit,
            attr.BUDGET_ACTUAL_TOKENS: breach.tokens,
            attr.BUDGET_ACTUAL_USD: float(breach.cost_usd),
            attr.BUDGET_UNPRICED_CALLS: breach.unpriced_calls,
            attr.BUDGET_POLICY: self._policy if isinstance(self._policy, str) else POLICY_CALLBACK,
        }
        if breach.budget_tokens is not None:
            event[attr.BUDGET_TOKENS] = breach.budget_tokens
        if breach.budget_usd is not None:
            event[attr.BUDGET_USD] = float(breach.budget_usd)
        self._span.add_event(attr.BUDGET_EXCEEDED_EVENT, attributes=event)

    def _apply(self, breach: BudgetBreach) -> None:
        if self._policy == POLICY_RAISE:
            raise BudgetExceeded(breach)
        if self._policy == POLICY_WARN or not callable(self._policy):
            logger.warning("agentledger: %s", breach.describe())
            return
        try:
            self._policy(breach)
        except Exception:  # broad: the author's callback failed; the agent goes on
            logger.warning(
                "agentledger: budget callback failed for run %s", self._run_id, exc_info=True
            )


class Prices:
    """Prices calls with genai-prices, remembering the models it does not know.

    The lookup is the one the collector makes: by model and provider, then by the model
    alone, since OpenTelemetry provider names are not all genai-prices ids.
    """

    def __init__(self) -> None:
        self._unknown: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def price(
        self,
        model: str,
        provider: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Decimal | None:
        """The price in USD at today's rates, or None when unknown (noted once per model)."""
        if not model or (model, provider) in self._unknown:
            return None
        # Imported here: genai-prices loads its price data on first use, which a run without
        # a cost budget never needs.
        from genai_prices import Usage, calc_price

        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )
        for provider_id in (provider, None) if provider else (None,):
            try:
                result = calc_price(usage, model, provider_id=provider_id)
                return Decimal(result.total_price)
            except LookupError:
                continue
            except ValueError as exc:  # usage that genai-prices refuses to price
                logger.warning(
                    "agentledger: budget: usage of model=%r cannot be priced (%s); the call is "
                    "not counted in the run's cost",
                    model,
                    exc,
                )
                return None
        with self._lock:
            first = (model, provider) not in self._unknown
            self._unknown.add((model, provider))
        if first:
            logger.warning(
                "agentledger: budget: no price known for model=%r provider=%r; its calls are "
                "not counted in the run's cost",
                model,
                provider,
            )
        return None


DEFAULT_PRICES = Prices()


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


__all__ = ["BudgetBreach", "BudgetExceeded", "BudgetPolicy", "RunBudget"]
