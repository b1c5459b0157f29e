package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"
)

// pagerDuty sends events to the PagerDuty Events API v2: a trigger opens
// (or, with the same dedup_key, updates) an incident on the service of the
// routing key; a resolve closes it.
type pagerDuty struct {
	routingKey string
	http       *httpPoster
}

func newPagerDuty(c SinkConfig) (*pagerDuty, error) {
	if c.routingKey == "" {
		return nil, errors.New(c.String() + ": no routing key (the config was not validated)")
	}
	u := c.URL
	if u == "" {
		u = PagerDutyURL
	}
	return &pagerDuty{routingKey: c.routingKey, http: newHTTPPoster(u, c.routingKey)}, nil
}

// maxPagerDutySummary is the Events API's limit on payload.summary.
const maxPagerDutySummary = 1024

// pdEvent is the body of POST /v2/enqueue.
type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"` // trigger, resolve
	DedupKey    string     `json:"dedup_key"`
	Payload     *pdPayload `json:"payload,omitempty"` // trigger only
	Client      string     `json:"client,omitempty"`
}

type pdPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      Severity       `json:"severity"`
	Timestamp     string         `json:"timestamp"`
	Component     string         `json:"component,omitempty"`
	Class         string         `json:"class"`
	CustomDetails map[string]any `json:"custom_details"`
}

func (p *pagerDuty) body(ev Event) ([]byte, error) {
	e := pdEvent{RoutingKey: p.routingKey, EventAction: string(ev.Action), DedupKey: ev.DedupKey()}
	switch ev.Action {
	case Trigger:
		a := ev.Alert
		sev := a.Severity
		switch sev {
		case Critical, Error, Warning, Info:
		default:
			sev = Error // PagerDuty refuses anything else with a 400
		}
		details := maps.Clone(a.Details)
		if details == nil {
			details = map[string]any{}
		}
		if len(a.LastLines) > 0 {
			details["last_lines"] = a.LastLines
		}
		if a.Command != "" {
			details["command"] = a.Command
		}
		if !a.Since.IsZero() {
			details["since"] = a.Since.Format(time.RFC3339)
		}
		if ev.Repeat {
			details["repeat"] = true
		}
		e.Client = "hostctl"
		e.Payload = &pdPayload{
			Summary:       cut(a.Summary, maxPagerDutySummary),
			Source:        ev.Host,
			Severity:      sev,
			Timestamp:     ev.Time.Format(time.RFC3339),
			Component:     a.Program,
			Class:         a.Condition,
			CustomDetails: details,
		}
	case Resolve:
	default:
		return nil, permanent(fmt.Errorf("pagerduty: unknown action %q", ev.Action))
	}
	b, err := json.Marshal(e)
	if err != nil {
		// Details hold a value JSON cannot encode: a bug in the caller.
		return nil, permanent(fmt.Errorf("pagerduty: encoding the event: %w", err))
	}
	return b, nil
}

// Send posts ev. PagerDuty answers 202 Accepted; 400 (a malformed event or
// a wrong routing key) is permanent, 429 (rate limited) and 5xx are worth
// retrying.
func (p *pagerDuty) Send(ctx context.Context, ev Event) error {
	b, err := p.body(ev)
	if err != nil {
		return err
	}
	_, err = p.http.post(ctx, b, nil)
	return err
}
