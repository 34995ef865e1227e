"""The job dealhook does, done the way a user would otherwise do it: a minimal hand-written Python
Lambda handler (json + jinja2 + hmac) for two routes of dealhook's showcase mapping (examples/showcase/mapping.yaml):
`website-quote` (a JSON form) and `typeform` (signed with HMAC-SHA256; route
`typeform-demo-request`). It builds the same HubSpot v1 deal request body dealhook builds, and
answers with it as dealhook's dry run does, so that both do the same work from the event's JSON text
to the serialised response. No validation beyond what these two routes need: a real handler would do
more, not less.

Run by scripts/bench through benches/peers/bench.py.
"""

import base64
import datetime
import hashlib
import hmac
import json
from decimal import Decimal

import jinja2

# Compiled once per cold start, as a warm Lambda keeps them.
ENV = jinja2.Environment(autoescape=False, undefined=jinja2.ChainableUndefined)
TEMPLATES = {
    "website-quote": {
        "dealstage": ENV.from_string("{{ fields.plan }}"),
        "dealname": ENV.from_string("{{ fields.company }} – {{ fields.plan | default('quote') }}"),
        "amount": ENV.from_string("{{ fields.budget }}"),
        "closedate": ENV.from_string("{{ fields.decision_date }}"),
        "description": ENV.from_string("{{ fields.message }}"),
    },
    "typeform": {
        "dealname": ENV.from_string(
            "Demo request: {{ fields.readable_ref_short_text }} ({{ fields.readable_ref_email }})"
        ),
        "description": ENV.from_string("{{ fields.readable_ref_long_text }}"),
        "closedate": ENV.from_string("{{ fields.readable_ref_date }}"),
    },
}
STAGES = {"enterprise": "qualifiedtobuy", "team": "presentationscheduled"}


class Rejected(Exception):
    def __init__(self, status, code):
        super().__init__(code)
        self.status = status
        self.code = code


def number(text):
    """ "12,500.50" -> "12500.5" (HubSpot takes numbers as text)."""
    value = Decimal(text.replace(",", "")).normalize()
    return format(value, "f")


def date_ms(text):
    """ "2026-12-15" -> midnight UTC in epoch milliseconds."""
    day = datetime.date.fromisoformat(text)
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc).timestamp()) * 1000


def ids(value):
    if value in (None, ""):
        return []
    if isinstance(value, list):
        return [int(v) for v in value]
    return [int(value)]


def website_quote(headers, body, secrets):
    fields = json.loads(body)
    t = TEMPLATES["website-quote"]
    ctx = {"fields": fields}
    plan = t["dealstage"].render(ctx)
    properties = [
        {"name": "pipeline", "value": "default"},
        {"name": "dealstage", "value": STAGES.get(plan, "appointmentscheduled")},
        {"name": "dealname", "value": t["dealname"].render(ctx)},
    ]
    amount = t["amount"].render(ctx).strip()
    if amount:
        properties.append({"name": "amount", "value": number(amount)})
    closedate = t["closedate"].render(ctx).strip()
    if closedate:
        properties.append({"name": "closedate", "value": date_ms(closedate)})
    description = t["description"].render(ctx).strip()
    if description:
        properties.append({"name": "description", "value": description})
    properties.append({"name": "dealtype", "value": "newbusiness"})
    return {
        "associations": {
            "associatedCompanyIds": ids(fields.get("hubspot_company_id")),
            "associatedVids": ids(fields.get("hubspot_vids")),
        },
        "properties": properties,
    }


def typeform_value(answer):
    kind = answer.get("type")
    if kind == "choice":
        return answer["choice"].get("label")
    if kind == "choices":
        return answer["choices"].get("labels")
    return answer.get(kind)


def typeform(headers, body, secrets):
    key = secrets["signing"]["typeform"].encode()
    expected = "sha256=" + base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, headers.get("typeform-signature", "")):
        raise Rejected(401, "signature_mismatch")
    response = json.loads(body)["form_response"]
    refs = {f["id"]: f["ref"] for f in response["definition"]["fields"]}
    fields = {"form_id": response["form_id"]}
    for answer in response["answers"]:
        fields[refs.get(answer["field"]["id"], answer["field"]["id"])] = typeform_value(answer)
    if fields["form_id"] != "lT4Z3j":
        return None
    t = TEMPLATES["typeform"]
    ctx = {"fields": fields}
    properties = [
        {"name": "pipeline", "value": "default"},
        {"name": "dealstage", "value": "appointmentscheduled"},
        {"name": "dealname", "value": t["dealname"].render(ctx)},
    ]
    description = t["description"].render(ctx).strip()
    if description:
        properties.append({"name": "description", "value": description})
    closedate = t["closedate"].render(ctx).strip()
    if closedate:
        properties.append({"name": "closedate", "value": date_ms(closedate)})
    # No association in this route: dealhook leaves the key out of the request rather than send empty lists.
    return {"properties": properties}


ROUTES = {"/hooks/website-quote": website_quote, "/hooks/typeform": typeform}


def answer(status, body):
    return json.dumps(
        {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
    )


def handler(event_text, secrets):
    """The Lambda event's JSON text in, the serialised Lambda response out (dry run: the request)."""
    event = json.loads(event_text)
    path = event.get("rawPath") or event.get("path")
    route = ROUTES.get(path)
    if route is None:
        return answer(404, {"status": "rejected", "error": {"code": "unknown_route"}})
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    try:
        request = route(headers, body, secrets)
    except Rejected as e:
        return answer(e.status, {"status": "rejected", "error": {"code": e.code}})
    if request is None:
        return answer(200, {"status": "ignored"})
    return answer(200, {"status": "dry_run", "request": {"method": "POST", "path": "/deals/v1/deal/", "body": request}})
