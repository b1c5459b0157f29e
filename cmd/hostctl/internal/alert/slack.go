package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// slack posts to a Slack incoming webhook
// (https://api.slack.com/messaging/webhooks): a "text" in mrkdwn, which
// is also the notification, and the same text with the last log lines as
// "blocks". Slack answers 200 with the body "ok"; its errors are 400
// (invalid_payload), 403 (invalid_token), 404 and 410 (channel gone), all
// permanent, and 429 or 5xx, worth retrying.
type slack struct {
	http *httpPoster
}

func newSlack(c SinkConfig) (*slack, error) {
	if c.URL == "" {
		return nil, errors.New(c.String() + ": no url")
	}
	return &slack{http: newHTTPPoster(c.URL)}, nil
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks,omitempty"`
}

type slackBlock struct {
	Type string     `json:"type"` // section
	Text *slackText `json:"text,omitempty"`
}

type slackText struct {
	Type string `json:"type"` // mrkdwn
	Text string `json:"text"`
}

// slackEscape escapes the three characters Slack's mrkdwn gives a meaning
// to as markup (links and mentions).
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackCode puts s in backticks; a backtick inside would end the code
// span, so it becomes a quote.
func slackCode(s string) string {
	return "`" + slackEscape.Replace(strings.ReplaceAll(s, "`", "'")) + "`"
}

// slackText formats ev for a phone's lock screen first: the emoji, the
// host, the summary; then the command.
func slackTextOf(ev Event) string {
	a := ev.Alert
	var b strings.Builder
	switch ev.Action {
	case Resolve:
		fmt.Fprintf(&b, ":large_green_circle: *%s* resolved: %s", slackEscape.Replace(ev.Host), slackEscape.Replace(a.Summary))
		if ev.ResolveSummary != "" {
			fmt.Fprintf(&b, "\n%s", slackEscape.Replace(ev.ResolveSummary))
		}
		if !a.Since.IsZero() {
			fmt.Fprintf(&b, " (lasted %s)", ago(ev.Time.Sub(a.Since)))
		}
	default:
		still := ""
		if ev.Repeat {
			still = "still: "
		}
		fmt.Fprintf(&b, ":red_circle: *%s* %s%s", slackEscape.Replace(ev.Host), still, slackEscape.Replace(a.Summary))
		if ev.Repeat && !a.Since.IsZero() {
			fmt.Fprintf(&b, " (for %s)", ago(ev.Time.Sub(a.Since)))
		}
		if a.Command != "" {
			fmt.Fprintf(&b, "\nWhat to do: %s", slackCode(a.Command))
		}
		if notes, _ := a.Details["notes"].(string); notes != "" {
			fmt.Fprintf(&b, "\nNotes: %s", slackEscape.Replace(notes))
		}
	}
	return b.String()
}

func slackPayload(ev Event) ([]byte, error) {
	m := slackMessage{Text: slackTextOf(ev)}
	if ev.Action == Trigger && len(ev.Alert.LastLines) > 0 {
		var lines bytes.Buffer
		for _, l := range ev.Alert.LastLines {
			lines.WriteString(slackEscape.Replace(strings.ReplaceAll(l, "```", "'''")))
			lines.WriteByte('\n')
		}
		// A section's text is limited to 3000 characters.
		last := "```" + cut(strings.TrimRight(lines.String(), "\n"), 2900) + "```"
		m.Blocks = []slackBlock{
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: cut(m.Text, 3000)}},
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: last}},
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, permanent(fmt.Errorf("slack: encoding the message: %w", err))
	}
	return b, nil
}

// Send posts ev. Slack's answer to a good message is 200 "ok"; a 2xx with
// any other body is reported as an error, permanent since resending the
// same message would get the same answer.
func (s *slack) Send(ctx context.Context, ev Event) error {
	b, err := slackPayload(ev)
	if err != nil {
		return err
	}
	answer, err := s.http.post(ctx, b, nil)
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(answer)); got != "ok" {
		q := s.http.quote(answer)
		if q == "" {
			q = "an empty body"
		}
		return permanent(fmt.Errorf("POST to %s: Slack answered %s instead of \"ok\"", s.http.where(), q))
	}
	return nil
}
