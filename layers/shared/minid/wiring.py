"""Wiring: for each function, its adapters built from its settings and handed to its services.

Called once per execution environment (the handler caches the result), so clients, the pepper
and the settings are made once, at the first request, never at import.

Each builder imports what its function uses, inside it: importing this module costs nothing, and a
function loads only its own part of the domain and its adapters (every module imported is cold-start
time: the notifier has no use for the enrolment's, nor the login for the letter workflow's).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import botocore.httpsession
import botocore.session
from botocore.config import Config
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader

from minid.attempts import ATTEMPT_SECONDS, CONNECT_SECONDS, READ_SECONDS
from minid.values import Value

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from minid.adapters.idempotency import PowertoolsOnceOnly
    from minid.adapters.notices import SqsNoticeQueue
    from minid.adapters.sealing import KmsSealer
    from minid.domain.contact_changes import ContactReview, ContactService
    from minid.domain.credentials import CredentialService
    from minid.domain.enrolment import EnrolmentService
    from minid.domain.keys import Keyer
    from minid.domain.letters.account import PinLetterAccount
    from minid.domain.letters.ordering import PinLetterOrdering
    from minid.domain.letters.printing import PrintReports
    from minid.domain.letters.workflow import LetterWorkflowTasks
    from minid.domain.login import LoginService
    from minid.domain.notices import Channel, Delivered, Notice, NoticeDelivery
    from minid.domain.password_reset import PasswordResetService
    from minid.domain.profile import ProfileService
    from minid.domain.random import RandomSource
    from minid.domain.rate_limits import ClientLimitPolicy, ClientLimits
    from minid.domain.sessions import Sessions
    from minid.domain.time import Clock
    from minid.domain.timing import EvenTiming
    from minid.settings import (
        ClientLimitSettings,
        NoticeSettings,
        NotifierSettings,
        PepperSettings,
        SessionSettings,
    )

# Short timeouts and the SDK's standard retries: a slow dependency becomes a 503 the client retries.
# No attempt is sent that could end after the invocation's own deadline (minid.deadline).
RETRIES = 3  # (botocore's `max_attempts` is the retries: 4 attempts)
AWS_CONFIG = Config(
    connect_timeout=CONNECT_SECONDS,
    read_timeout=READ_SECONDS,
    retries={"mode": "standard", "max_attempts": RETRIES},
    tcp_keepalive=True,
)
# The longest a call can take with DynamoDB or a provider hanging: each attempt at its timeouts, and the
# standard mode's backoff between them (tens of milliseconds after a timeout; a throttle's, of up to 1, 2
# and 4 seconds, follows quick answers, and ends sooner).
LONGEST_CALL_SECONDS = (RETRIES + 1) * ATTEMPT_SECONDS + 1


# The services that send an SMS or an e-mail (minid.adapters.notices.no_second_message, note_maybe_sent).
SENDERS = ("sns", "sesv2")


def client(service: Any, *, delivered: bool = False) -> Any:
    """The service's client: DynamoDB's now (nearly every request calls it), any other at its first
    call. Making a client loads its service's model (see _ServicesWeCall); a function that may send an
    SMS, an e-mail or a notice should not pay for all three before a request that sends none.

    `delivered`: an SNS or SES client of the notifier's, whose delivery ledger keeps a send that may have
    gone out from being made again (minid.adapters.notices.no_second_message): the SDK makes none either.
    A request's own code sends keep the SDK's retries: a retry sends the same code again, which works,
    where a 503 would have the client ask for another."""
    if service == "dynamodb":
        return _made(service)
    return _ClientAtFirstCall(service, delivered=delivered)


# The services the functions call: botocore loads only these models.
SERVICES = ("dynamodb", "kms", "s3", "secretsmanager", "sesv2", "sns", "sqs", "stepfunctions")


# botocore's endpoints.json with the entries of SERVICES only (local/endpoints.py; a path without its
# .json, as botocore's file loader takes it)
ENDPOINTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "endpoints")
# botocore's service models of SERVICES, each with the operations the functions call only (local/models.py)
MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


class _ServicesWeCall(Loader):
    """botocore's loader of service models, knowing of the services the functions call only.

    Before the first model of a process, botocore's loader lists every service it has (some 440 folders,
    and a stat of each version's file) only to tell an unknown name from a known one, and again before the
    first endpoint rules: some 10 ms each time here, over 20 ms of every cold start. botocore's
    maintainers are taking that listing out of the way of a client's creation (boto/botocore#3687, open
    as of this writing); until then, this. A name not listed here is refused as botocore refuses an
    unknown service (UnknownServiceError).

    And botocore's endpoints.json (1.2 MB, every service in every partition, parsed at the first client:
    10 to 20 ms of every cold start) is given as ENDPOINTS: botocore's own, with the entries of SERVICES
    only (`make endpoints` cuts it; a test holds it equal to the botocore installed).

    And each service's model is botocore's with the operations the functions call and the shapes they
    use only (MODELS, `make models`): a client takes 4 to 30 ms (S3 and Step Functions the most) as its
    whole model is parsed and a method made for each of up to 200 operations; cut, 2 to 4 ms (S3 10 to
    16: its endpoint rules, which are not cut). A test holds them equal to the botocore installed, and
    the operations to the calls in the code. A version of a service botocore has and MODELS has not
    (botocore upgraded without `make models`) is botocore's own, whole.
    """

    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        if name == "endpoints":
            return self.file_loader.load_file(ENDPOINTS), ENDPOINTS
        if name.endswith("/service-2"):
            path = os.path.join(MODELS, name)
            cut = self.file_loader.load_file(path)
            if cut is not None:
                return cut, path
        return super().load_data_with_path(name)

    def is_builtin_path(self, path: str) -> bool:
        # endpoints.json as botocore has it (in part): resolved as botocore resolves its own file. (A file
        # not botocore's own would have its endpoints handed to the endpoint rules as the endpoint to use.)
        return path == ENDPOINTS or super().is_builtin_path(path)

    def list_available_services(self, type_name: str) -> list[str]:
        return [service for service in SERVICES if self._has(service, type_name)]

    def _has(self, service: str, type_name: str) -> bool:
        try:
            return bool(self.list_api_versions(service, type_name))
        except DataNotFoundError:
            return False


# The clients are botocore's, from one session of the process, rather than boto3's: `import boto3`
# loads boto3's sessions, resources and s3transfer, which no function uses, some 15 ms of every cold
# start (`make bench`). A botocore session reads the region, the credentials and AWS_ENDPOINT_URL from
# the environment as boto3's does. A session is not safe to make clients with from two threads at once
# (the local stack serves several functions in one process): they are made under a lock.
_making = threading.RLock()
_session: botocore.session.Session | None = None


def session() -> botocore.session.Session:
    """The session the functions' clients are made from: where the tests and the bench listen to their
    calls (its events are copied into each client as it is made)."""
    global _session  # noqa: PLW0603  (one per process, made at the first client)
    with _making:
        if _session is None:
            _session = new_session()
        return _session


def new_session() -> botocore.session.Session:
    """A botocore session whose loader knows of the services the functions call (SERVICES) only."""
    made = botocore.session.get_session()
    if made.get_config_variable("data_path") is None:  # no service models of one's own (AWS_DATA_PATH)
        made.register_component("data_loader", _ServicesWeCall())
    return made


def _made(service: Any, *, delivered: bool = False) -> Any:
    from minid.deadline import guard

    with _making:
        made = session().create_client(service, config=AWS_CONFIG)
    # first: before any other handler of the event (moto's, in the local stack, answers the call there)
    made.meta.events.register_first("before-send", guard(ATTEMPT_SECONDS))
    _waits_held_to_deadline(made)
    if service in SENDERS:
        from minid.adapters.notices import no_second_message, note_maybe_sent

        # on the service's name, where the SDK's retry handler is (botocore calls the most specific first)
        service_id = made.meta.service_model.service_id.hyphenize()
        made.meta.events.register_first(
            f"needs-retry.{service_id}", no_second_message if delivered else note_maybe_sent
        )
    _trust_lazily(made._endpoint.http_session)  # type: ignore[attr-defined]  # botocore's, not typed
    return made


def _waits_held_to_deadline(made: Any) -> None:
    """The client's retries wait only while their attempt can still end before the deadline
    (minid.deadline.waits_held). botocore keeps its retry handler to itself (registered when the client
    is made, unreturned): it is made again here as the client made it, kept, and registered wrapped in
    place of the client's own, under the same name. (Registered again, it comes after S3's region
    redirector on S3's event: that acts on redirects and a wrong region's errors, none of which the SDK
    retries. The first handler's quota, left behind, is handed back what no retry takes from it.)"""
    from botocore.retries import standard

    from minid.deadline import waits_held

    service_id = made.meta.service_model.service_id.hyphenize()
    event, name = f"needs-retry.{service_id}", f"retry-config-{service_id}"
    made.meta.events.unregister(event, unique_id=name)
    sdk = standard.register_retry_handler(made, max_attempts=made.meta.config.retries["total_max_attempts"])
    made.meta.events.unregister(event, unique_id=name)
    made.meta.events.register(event, waits_held(sdk.needs_retry, ATTEMPT_SECONDS), unique_id=name)


# The certificate authorities botocore trusts (its cacert.pem, as the layer has no certifi), one file
# each, named by the hash of its subject: OpenSSL's hashed directory (`make roots`, local/roots.py; a
# test holds it equal to the bundle of the botocore the layer carries).
ROOTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "roots")


def _trust_lazily(http: Any) -> None:
    """The client's connections trust the certificate authorities of a hashed directory (ROOTS; or the
    one AWS_CA_BUNDLE names), not of a bundle file.

    botocore hands its bundle to OpenSSL as a file at every new connection, and OpenSSL parses all of
    it each time (126 certificates): some 20 ms, at the first call of a cold start (the pepper's) and at
    the first of each other service, and again whenever a connection is made anew (boto/botocore#3171,
    open as of this writing). From a hashed directory, OpenSSL reads at a handshake the one root it
    looks for. The same certificates, so the same trust; the same verification (the certificate and the
    host name checked). A bundle file named by AWS_CA_BUNDLE, no verifying, or a bundle other than
    botocore's own (certifi's, where it can be imported: not in the layer) is left to botocore.

    botocore has no setting for a directory (boto/botocore#3681, open): this takes over its session's
    setup of each connection pool (`http`: botocore.httpsession.URLLib3Session) for HTTPS, setting what
    botocore's sets, with the directory in place of the file (set, not corrected after botocore's: a
    connection made meanwhile by another thread must not see the file, nor a directory as a file).
    """
    verify = http._verify
    if verify is True and botocore.httpsession.where() == botocore.httpsession.DEFAULT_CA_BUNDLE:
        directory = ROOTS  # botocore's own bundle, as ROOTS has it (with certifi importable, certifi's)
    elif isinstance(verify, str) and os.path.isdir(verify):
        directory = verify
    else:
        return
    setup = http._setup_ssl_cert

    def setup_ssl_cert(pool: Any, url: str, verify: Any) -> None:
        if url.lower().startswith("https") and verify:  # as botocore's, with the directory for the file
            pool.cert_reqs, pool.ca_certs, pool.ca_cert_dir = "CERT_REQUIRED", None, directory
        else:
            setup(pool, url, verify)

    http._setup_ssl_cert = setup_ssl_cert


class _ClientAtFirstCall:
    """Stands in for a client until its first use, then is that client. (A proxy of our own: botocore
    makes clients eagerly and has no lazy form.)"""

    def __init__(self, service: Any, *, delivered: bool) -> None:
        self._service = service
        self._delivered = delivered
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = _made(self._service, delivered=self._delivered)
        return getattr(self._client, name)


# Where the short path of an unauthenticated answer waits for the full path's time (EvenTiming), the
# first guess of that time, until the environment has measured it: a few DynamoDB calls.
SHORT_WORK_SECONDS = 0.02


def _even(initial_seconds: float) -> EvenTiming:
    from minid.adapters.clock import SystemStopwatch
    from minid.domain.timing import EvenTiming

    return EvenTiming(SystemStopwatch(), initial_seconds=initial_seconds)


def _notices(settings: NoticeSettings, queue_url: str) -> SqsNoticeQueue:
    """Notices queued on `queue_url`: the notice queue; a reset's codes' (which the notifier takes at once,
    one by one); or the daily review's reminders' (which it takes a few at a time, beside the notices)."""
    from minid.adapters.notices import SqsNoticeQueue

    return SqsNoticeQueue(client("sqs"), queue_url, _recipients_sealer(settings), settings.notice_proof_delay_seconds)


def notifier_queue(environ: Mapping[str, str]) -> SqsNoticeQueue:
    """The notice queue, for the notices the notifier queues itself: a lock's, from the security events'
    stream (its change made already: no delay for its proof)."""
    from minid.adapters.notices import SqsNoticeQueue
    from minid.settings import NotifierSettings

    settings = NotifierSettings.from_environ(environ)
    return SqsNoticeQueue(client("sqs"), settings.notice_queue_url, _recipients_sealer(settings))


def _recipients_sealer(settings: NoticeSettings | NotifierSettings) -> KmsSealer:
    """KMS, not the pepper: the notifier opens what the others seal, and has no use for the pepper."""
    from minid.adapters.sealing import KmsSealer

    return KmsSealer(client("kms"), settings.data_key_arn)


def _client_limits(
    dynamodb: DynamoDBClient, challenges_table: str, keyer: Keyer, policy: ClientLimitPolicy
) -> ClientLimits:
    """The limits a function counts (its policy names them), counted in the challenges table."""
    from minid.adapters.rate_limits import DynamoDbRateCounter
    from minid.domain.rate_limits import ClientLimits

    return ClientLimits(DynamoDbRateCounter(dynamodb, challenges_table), keyer, policy)


def _client_policy(settings: ClientLimitSettings, **more: int) -> ClientLimitPolicy:
    """The limits of the functions that take identity numbers and send codes (login, enrolment); `more`:
    a function's own (login's resets a day, enrolment's guesses: the person's a day, the client's an hour)."""
    from msgspec.structs import replace

    from minid.domain.rate_limits import ClientLimitPolicy

    policy = ClientLimitPolicy.of(
        settings.client_identity_attempts_per_minute,
        settings.client_codes_sent_per_hour,
        settings.codes_to_person_per_hour,
    )
    return replace(policy, **more)


def _keyer(settings: PepperSettings) -> Keyer:
    from minid.adapters.secrets import load_pepper
    from minid.domain.keys import Keyer

    return Keyer(load_pepper(client("secretsmanager"), settings.pepper_secret_arn))


def _sessions(settings: SessionSettings, dynamodb: DynamoDBClient, keyer: Keyer, clock: Clock) -> Sessions:
    from minid.adapters.accounts import DynamoDbAccounts
    from minid.adapters.random import SystemRandom
    from minid.adapters.sealing import AesGcmSealer
    from minid.adapters.sessions import DynamoDbSessionStore
    from minid.domain.sessions import SessionPolicy, Sessions

    return Sessions(
        store=DynamoDbSessionStore(dynamodb, settings.sessions_table, events_table=settings.security_events_table),
        users=DynamoDbAccounts(dynamodb, settings.users_table),
        keyer=keyer,
        sealer=AesGcmSealer(keyer),
        random=SystemRandom(),
        clock=clock,
        policy=SessionPolicy(
            idle=timedelta(seconds=settings.session_idle_seconds),
            absolute=timedelta(seconds=settings.session_absolute_seconds),
        ),
    )


class PinLetterServices(Value, frozen=True):
    ordering: PinLetterOrdering
    account: PinLetterAccount
    sessions: Sessions
    once_only: PowertoolsOnceOnly
    keyer: Keyer  # a person's key from their number (tools/block_letters.py), under the one pepper loaded


def pin_letters(environ: Mapping[str, str]) -> PinLetterServices:
    from minid.adapters.clock import SystemClock
    from minid.adapters.idempotency import PowertoolsOnceOnly
    from minid.adapters.letters import DynamoDbPinLetters
    from minid.adapters.random import SystemRandom
    from minid.adapters.workflow import PrintTimeouts, StepFunctionsLetterWorkflow
    from minid.domain.letters.account import PinLetterAccount
    from minid.domain.letters.ordering import PinLetterOrdering
    from minid.domain.rate_limits import ClientLimitPolicy
    from minid.settings import PinLetterSettings

    settings = PinLetterSettings.from_environ(environ)
    dynamodb: DynamoDBClient = client("dynamodb")
    clock = SystemClock()
    letters = DynamoDbPinLetters(dynamodb, settings.pin_letters_table, settings.security_events_table)
    keyer = _keyer(settings)
    once_only = PowertoolsOnceOnly(dynamodb, settings.idempotency_table, name="order_pin_letter")
    workflow = StepFunctionsLetterWorkflow(
        client("stepfunctions"),
        settings.letter_workflow_arn,
        PrintTimeouts(settings.print_timeout_seconds, settings.print_heartbeat_seconds),
    )
    return PinLetterServices(
        ordering=PinLetterOrdering(
            letters=letters,
            workflow=workflow,
            once_only=once_only,
            keyer=keyer,
            random=SystemRandom(),
            clock=clock,
            allow_synthetic=settings.allow_synthetic_identity_numbers,
            limits=_client_limits(
                dynamodb,
                settings.challenges_table,
                keyer,
                ClientLimitPolicy(letter_orders_per_hour=settings.client_letter_orders_per_hour),
            ),
        ),
        account=PinLetterAccount(letters, clock, _notices(settings, settings.notice_queue_url)),
        sessions=_sessions(settings, dynamodb, keyer, clock),
        once_only=once_only,
        keyer=keyer,
    )


def letter_workflow(environ: Mapping[str, str]) -> LetterWorkflowTasks:
    from minid.adapters.clock import SystemClock
    from minid.adapters.letters import DynamoDbPinLetters
    from minid.adapters.population import DynamoDbPopulationRegister
    from minid.adapters.print_documents import S3PrintDocuments
    from minid.adapters.random import SystemRandom
    from minid.adapters.recipients import DynamoDbRecipients
    from minid.deadline import exempt
    from minid.domain.letters.workflow import LetterWorkflowTasks
    from minid.settings import LetterWorkflowSettings

    settings = LetterWorkflowSettings.from_environ(environ)
    dynamodb: DynamoDBClient = client("dynamodb")
    random = SystemRandom()
    return LetterWorkflowTasks(
        letters=DynamoDbPinLetters(dynamodb, settings.pin_letters_table, settings.security_events_table),
        recipients=DynamoDbRecipients(
            dynamodb,
            population_table=settings.population_register_table,
            contacts_table=settings.contact_register_table,
            letters_table=settings.pin_letters_table,
            events_table=settings.security_events_table,
        ),
        population=DynamoDbPopulationRegister(dynamodb, settings.population_register_table),
        documents=S3PrintDocuments(client("s3"), settings.print_bucket, settings.data_key_arn, random),
        notices=_notices(settings, settings.notice_queue_url),
        keyer=_PinCodeHasherAtFirstUse(settings),
        random=random,
        clock=SystemClock(),
        unhurried=exempt,
    )


class _PinCodeHasherAtFirstUse:
    """The keyer's PIN code hashes, the pepper read at the first (once an execution environment), not at
    the start: of the workflow's tasks only preparing a letter hashes its codes, and the function that
    activates letters (the same code: LetterActivationFunction) never does, nor may its role read it."""

    def __init__(self, settings: PepperSettings) -> None:
        self._settings = settings
        self._keyer: Keyer | None = None

    def pin_code_hash(self, letter_id: str, index: int, code: str) -> str:
        if self._keyer is None:
            self._keyer = _keyer(self._settings)
        return self._keyer.pin_code_hash(letter_id, index, code)


def print_callback(environ: Mapping[str, str]) -> PrintReports:
    from minid.adapters.letters import DynamoDbPinLetters
    from minid.adapters.workflow import StepFunctionsLetterWorkflow
    from minid.domain.letters.printing import PrintReports
    from minid.settings import PrintCallbackSettings

    settings = PrintCallbackSettings.from_environ(environ)
    return PrintReports(
        DynamoDbPinLetters(client("dynamodb"), settings.pin_letters_table),
        StepFunctionsLetterWorkflow(client("stepfunctions"), settings.letter_workflow_arn),
        provider_role=settings.print_provider_role_name,
        account=settings.print_provider_role_account,
    )


def enrolment(
    environ: Mapping[str, str], random: RandomSource | None = None, clock: Clock | None = None
) -> EnrolmentService:
    """`random` is for tests that draw codes as they choose, `clock` for tests that move time; the system's
    otherwise."""
    from minid.adapters.clock import SystemClock
    from minid.adapters.enrolments import DynamoDbAccountActivation, DynamoDbEnrolmentReads, DynamoDbEnrolments
    from minid.adapters.events import DynamoDbSecurityEventLog
    from minid.adapters.letters import DynamoDbPinLetters
    from minid.adapters.notices import SesEmailSender, SnsSmsSender
    from minid.adapters.passwords import Argon2PasswordHasher, CommonPasswords, zxcvbn_guesses
    from minid.adapters.random import SystemRandom
    from minid.domain.enrolment import EnrolmentService
    from minid.domain.passwords import PasswordPolicy
    from minid.settings import EnrolmentSettings

    settings = EnrolmentSettings.from_environ(environ)
    dynamodb: DynamoDBClient = client("dynamodb")
    keyer = _keyer(settings)
    return EnrolmentService(
        reads=DynamoDbEnrolmentReads(
            dynamodb,
            letters_table=settings.pin_letters_table,
            population_table=settings.population_register_table,
            users_table=settings.users_table,
            contacts_table=settings.contact_register_table,
        ),
        letters=DynamoDbPinLetters(dynamodb, settings.pin_letters_table, settings.security_events_table),
        enrolments=DynamoDbEnrolments(dynamodb, settings.challenges_table),
        activation=DynamoDbAccountActivation(
            dynamodb,
            users_table=settings.users_table,
            contacts_table=settings.contact_register_table,
            letters_table=settings.pin_letters_table,
            challenges_table=settings.challenges_table,
            events_table=settings.security_events_table,
        ),
        passwords=PasswordPolicy(CommonPasswords(), zxcvbn_guesses),
        hasher=Argon2PasswordHasher(keyer),
        sms=SnsSmsSender(client("sns"), settings.sms_sender_id),
        email=SesEmailSender(client("sesv2"), settings.email_sender, settings.email_configuration_set),
        notices=_notices(settings, settings.notice_queue_url),
        events=DynamoDbSecurityEventLog(dynamodb, settings.security_events_table),
        keyer=keyer,
        random=random or SystemRandom(),
        clock=clock or SystemClock(),
        allow_synthetic=settings.allow_synthetic_identity_numbers,
        public_domain=settings.public_domain,
        starts=_even(SHORT_WORK_SECONDS),
        wrong_codes=_even(SHORT_WORK_SECONDS),
        limits=_client_limits(
            dynamodb,
            settings.challenges_table,
            keyer,
            _client_policy(
                settings,
                enrolment_pin_guesses_per_day=settings.enrolment_pin_guesses_per_day,
                client_enrolment_guesses_per_hour=settings.client_enrolment_guesses_per_hour,
            ),
        ),
    )


class LoginServices(Value, frozen=True):
    login: LoginService
    sessions: Sessions
    credentials: CredentialService
    resets: PasswordResetService
    profile: ProfileService
    clock: Clock  # the services' (a view's "now": a contact record's confirmation due, or stale)


def login(environ: Mapping[str, str], clock: Clock | None = None, random: RandomSource | None = None) -> LoginServices:
    """`clock` is for tests that move time (lockouts lifting, sessions expiring), `random` for tests that
    draw codes as they choose; the system's otherwise."""
    from minid.adapters.accounts import DynamoDbAccounts
    from minid.adapters.clock import SystemClock
    from minid.adapters.contacts import DynamoDbContactRegister
    from minid.adapters.events import DynamoDbSecurityEventLog
    from minid.adapters.letters import DynamoDbPinLetters
    from minid.adapters.logins import DynamoDbLoginAttempts, DynamoDbLoginCompletion, DynamoDbLoginReads
    from minid.adapters.notices import SnsSmsSender
    from minid.adapters.password_resets import DynamoDbPasswordResets, DynamoDbResetCompletion, DynamoDbResetReads
    from minid.adapters.passwords import Argon2PasswordHasher, CommonPasswords, zxcvbn_guesses
    from minid.adapters.population import DynamoDbPopulationRegister
    from minid.adapters.profile import DynamoDbProfileReads
    from minid.adapters.random import SystemRandom
    from minid.adapters.sealing import AesGcmSealer
    from minid.domain.accounts import LockoutPolicy
    from minid.domain.credentials import CredentialService
    from minid.domain.lockout import Lockout
    from minid.domain.login import LoginService
    from minid.domain.password_reset import PasswordResetService
    from minid.domain.passwords import PasswordPolicy
    from minid.domain.profile import ProfileService
    from minid.settings import LoginSettings

    settings = LoginSettings.from_environ(environ)
    dynamodb: DynamoDBClient = client("dynamodb")
    keyer = _keyer(settings)
    clock, random = clock or SystemClock(), random or SystemRandom()
    accounts = DynamoDbAccounts(
        dynamodb, settings.users_table, settings.security_events_table, settings.challenges_table
    )
    sessions = _sessions(settings, dynamodb, keyer, clock)
    sealer = AesGcmSealer(keyer)
    letters = DynamoDbPinLetters(dynamodb, settings.pin_letters_table, settings.security_events_table)
    contacts = DynamoDbContactRegister(dynamodb, settings.contact_register_table)
    population = DynamoDbPopulationRegister(dynamodb, settings.population_register_table)
    events = DynamoDbSecurityEventLog(dynamodb, settings.security_events_table)
    notices = _notices(settings, settings.notice_queue_url)
    hasher = Argon2PasswordHasher(keyer)
    passwords = PasswordPolicy(CommonPasswords(), zxcvbn_guesses)
    sms = SnsSmsSender(client("sns"), settings.sms_sender_id)
    policy = _client_policy(settings, reset_codes_to_person_per_day=settings.reset_codes_to_person_per_day)
    limits = _client_limits(dynamodb, settings.challenges_table, keyer, policy)
    lockout = Lockout(
        accounts,
        events,
        LockoutPolicy(settings.lockout_threshold, timedelta(seconds=settings.lockout_seconds)),
    )
    return LoginServices(
        clock=clock,
        login=LoginService(
            accounts=accounts,
            lockout=lockout,
            reads=DynamoDbLoginReads(
                dynamodb,
                users_table=settings.users_table,
                contacts_table=settings.contact_register_table,
                letters_table=settings.pin_letters_table,
                challenges_table=settings.challenges_table,
                population_table=settings.population_register_table,
            ),
            attempts=DynamoDbLoginAttempts(
                dynamodb,
                settings.challenges_table,
                users_table=settings.users_table,
                events_table=settings.security_events_table,
                contacts_table=settings.contact_register_table,
            ),
            sessions=sessions,
            contacts=contacts,
            letters=letters,
            hasher=hasher,
            sealer=sealer,
            sms=sms,
            events=events,
            notices=notices,
            limits=limits,
            keyer=keyer,
            random=random,
            clock=clock,
            allow_synthetic=settings.allow_synthetic_identity_numbers,
            public_domain=settings.public_domain,
            failures=_even(0.0),  # the dummy hash already does an account's work; the rest is learned
            completion=DynamoDbLoginCompletion(
                dynamodb,
                challenges_table=settings.challenges_table,
                letters_table=settings.pin_letters_table,
                users_table=settings.users_table,
                sessions_table=settings.sessions_table,
                events_table=settings.security_events_table,
                contacts_table=settings.contact_register_table,
            ),
        ),
        sessions=sessions,
        credentials=CredentialService(
            accounts=accounts,
            lockout=lockout,
            sessions=sessions,
            population=population,
            passwords=passwords,
            hasher=hasher,
            sealer=sealer,
            events=events,
            notices=notices,
            clock=clock,
        ),
        resets=PasswordResetService(
            resets=DynamoDbPasswordResets(dynamodb, settings.challenges_table),
            reads=DynamoDbResetReads(
                dynamodb,
                users_table=settings.users_table,
                contacts_table=settings.contact_register_table,
                letters_table=settings.pin_letters_table,
                population_table=settings.population_register_table,
            ),
            completion=DynamoDbResetCompletion(
                dynamodb,
                users_table=settings.users_table,
                letters_table=settings.pin_letters_table,
                challenges_table=settings.challenges_table,
                events_table=settings.security_events_table,
                contacts_table=settings.contact_register_table,
            ),
            letters=letters,
            passwords=passwords,
            hasher=hasher,
            events=events,
            notices=notices,
            codes=_notices(settings, settings.code_queue_url),  # never behind the notices
            limits=limits,
            keyer=keyer,
            random=random,
            clock=clock,
            allow_synthetic=settings.allow_synthetic_identity_numbers,
            starts=_even(SHORT_WORK_SECONDS),
            wrong_codes=_even(SHORT_WORK_SECONDS),
        ),
        profile=ProfileService(
            sessions=sessions,
            reads=DynamoDbProfileReads(
                dynamodb,
                population_table=settings.population_register_table,
                contacts_table=settings.contact_register_table,
                letters_table=settings.pin_letters_table,
            ),
            letters=letters,
            events=events,
        ),
    )


class ContactServices(Value, frozen=True):
    contacts: ContactService
    sessions: Sessions
    clock: Clock  # the services' (a view's "now": a contact record's confirmation due, or stale)


def contact(
    environ: Mapping[str, str], clock: Clock | None = None, random: RandomSource | None = None
) -> ContactServices:
    """`clock` is for tests that move time, `random` for tests that draw codes as they choose; the system's
    otherwise."""
    from minid.adapters.clock import SystemClock
    from minid.adapters.contact_changes import DynamoDbContactChanges
    from minid.adapters.contacts import DynamoDbContactRegister
    from minid.adapters.notices import SesEmailSender, SnsSmsSender
    from minid.adapters.random import SystemRandom
    from minid.domain.contact_changes import ContactService
    from minid.domain.rate_limits import ClientLimitPolicy
    from minid.settings import ContactSettings

    settings = ContactSettings.from_environ(environ)
    dynamodb: DynamoDBClient = client("dynamodb")
    keyer = _keyer(settings)
    clock = clock or SystemClock()
    return ContactServices(
        clock=clock,
        contacts=ContactService(
            register=DynamoDbContactRegister(dynamodb, settings.contact_register_table),
            changes=DynamoDbContactChanges(
                dynamodb,
                settings.challenges_table,
                contacts_table=settings.contact_register_table,
                users_table=settings.users_table,
                events_table=settings.security_events_table,
            ),
            sms=SnsSmsSender(client("sns"), settings.sms_sender_id),
            email=SesEmailSender(client("sesv2"), settings.email_sender, settings.email_configuration_set),
            notices=_notices(settings, settings.notice_queue_url),
            keyer=keyer,
            random=random or SystemRandom(),
            clock=clock,
            public_domain=settings.public_domain,
            limits=_client_limits(
                dynamodb,
                settings.challenges_table,
                keyer,
                ClientLimitPolicy(codes_to_person_per_hour=settings.codes_to_person_per_hour),
            ),
        ),
        sessions=_sessions(settings, dynamodb, keyer, clock),
    )


def contact_review(environ: Mapping[str, str], clock: Clock | None = None) -> ContactReview:
    from minid.adapters.clock import SystemClock
    from minid.adapters.contacts import DynamoDbContactRegister
    from minid.adapters.population import DynamoDbPopulationRegister
    from minid.domain.contact_changes import ContactReview
    from minid.settings import ContactReviewSettings

    settings = ContactReviewSettings.from_environ(environ)
    dynamodb: DynamoDBClient = client("dynamodb")
    register = DynamoDbContactRegister(
        dynamodb, settings.contact_register_table, events_table=settings.security_events_table
    )
    population = DynamoDbPopulationRegister(dynamodb, settings.population_register_table)
    return ContactReview(
        register=register,
        population=population,
        notices=_notices(settings, settings.reminder_queue_url),  # never before the notices
        clock=clock or SystemClock(),
    )


def notifier(
    environ: Mapping[str, str],
    unrecorded: Callable[[Notice, Sequence[Channel]], None] = lambda notice, channels: None,
    partly: Callable[[Notice, Delivered], None] = lambda notice, delivered: None,
    given_up: Callable[[Notice, Channel, Exception], None] = lambda notice, channel, error: None,
) -> NoticeDelivery:
    """`unrecorded`, `partly`, `given_up`: see NoticeDelivery (the notifier logs and counts them; a test may
    leave them)."""
    from minid.adapters.clock import SystemClock
    from minid.adapters.contacts import DynamoDbContactRegister
    from minid.adapters.events import DynamoDbSecurityEventLog
    from minid.adapters.notices import DynamoDbDeliveryLedger, SesEmailSender, SnsSmsSender, SqsDeliveryRetries
    from minid.adapters.population import DynamoDbPopulationRegister
    from minid.domain.notices import NoticeDelivery
    from minid.settings import NotifierSettings

    settings = NotifierSettings.from_environ(environ)
    dynamodb: DynamoDBClient = client("dynamodb")
    return NoticeDelivery(
        contacts=DynamoDbContactRegister(dynamodb, settings.contact_register_table),
        sms=SnsSmsSender(client("sns", delivered=True), settings.sms_sender_id),
        email=SesEmailSender(client("sesv2", delivered=True), settings.email_sender, settings.email_configuration_set),
        ledger=DynamoDbDeliveryLedger(dynamodb, settings.challenges_table),
        events=DynamoDbSecurityEventLog(dynamodb, settings.security_events_table),
        sealer=_recipients_sealer(settings),
        clock=SystemClock(),
        retries=SqsDeliveryRetries(
            client("sqs"), [settings.notice_queue_url, settings.reminder_queue_url], settings.code_queue_url
        ),
        population=DynamoDbPopulationRegister(dynamodb, settings.population_register_table),
        unrecorded=unrecorded,
        partly=partly,
        given_up=given_up,
        public_domain=settings.public_domain,
    )
