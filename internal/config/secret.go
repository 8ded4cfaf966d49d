package config

import (
	"reflect"
	"regexp"
	"strings"
)

// Which config values are secrets is one rule, written once, on the fields
// themselves: every field of every config struct (Config and everything
// reachable from it) carries a tag
//
//	secret:"true"   the value is a secret: every string in it (the string,
//	                each element of a list, each value of a map, whose keys
//	                are names and are kept, every string of a struct below)
//	                is shown as REDACTED, and a number or flag as its zero.
//	secret:"env"    a map of strings whose values are secret by their key's
//	                name, as an environment is: see RedactValue.
//	secret:"false"  shown as is, except that a password in a URL
//	                (scheme://user:password@host) is hidden wherever it is.
//
// A test walks every field reachable from Config and fails on a field
// without the tag, so a new field cannot be added without saying whether
// it is a secret. Everything that lets the config or its values leave the
// process reads this rule: Redacted (the admin API's dump), RedactValue
// (GET /api/env), and the decoder's and validator's error messages, which
// reach logs, terminals and the reload API.
const SecretTag = "secret"

// RedactedText replaces a secret value that is not empty.
const RedactedText = "REDACTED"

// Secrecy is a field's secret tag, ordered from least to most secret: a
// value below a secret field is secret whatever its own tag says.
type Secrecy uint8

// Secrecy values, by tag.
const (
	NotSecret   Secrecy = iota // secret:"false"
	SecretByKey                // secret:"env"
	Secret                     // secret:"true"
)

// FieldSecrecy reads f's secret tag; ok is false when the tag is missing
// or is not one of true, false and env (Redacted then treats the field as
// a secret: what was not declared is not shown).
func FieldSecrecy(f reflect.StructField) (s Secrecy, ok bool) {
	switch f.Tag.Get(SecretTag) {
	case "false":
		return NotSecret, true
	case "env":
		return SecretByKey, true
	case "true":
		return Secret, true
	}
	return Secret, false
}

// fieldSecret reports whether the field named name of struct type t is
// secret ("true" or "env", or untagged), for messages that would quote
// its value.
func fieldSecret(t reflect.Type, name string) bool {
	f, ok := t.FieldByName(name)
	if !ok {
		return true
	}
	s, _ := FieldSecrecy(f)
	return s != NotSecret
}

// secretNames matches names whose values must not leave the machine.
var secretNames = regexp.MustCompile(`(?i)(TOKEN|SECRET|PASSW|PWD|KEY|CREDENTIAL|AUTH|CONNECTION_?STRING|DSN|PRIVATE|HOOK)`)

// urlCredentials matches user:password@ in a URL or connection string.
// The user may be empty: redis://:PASSWORD@host.
var urlCredentials = regexp.MustCompile(`://([^:/@\s]*):([^@\s]+)@`)

// HideURLPasswords replaces the password of every scheme://user:password@
// in s with REDACTED, keeping the rest.
func HideURLPasswords(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return urlCredentials.ReplaceAllString(s, "://$1:"+RedactedText+"@")
}

// RedactValue is the rule for a value that is secret by its name (an
// environment variable's, or any key of a secret:"env" map): a name that
// says secret (…TOKEN, …PASSWORD, API_KEY, …) hides the value whole; a
// name ending in _URL keeps the URL's shape with only its password hidden
// (DATABASE_URL), unless the rest of the name says secret too
// (SLACK_WEBHOOK_URL, whose URL is itself the secret); and any value
// keeps a password in a URL hidden.
func RedactValue(key, value string) string {
	if value == "" {
		return value
	}
	name := strings.ToUpper(key)
	if base, isURL := strings.CutSuffix(name, "_URL"); isURL {
		if secretNames.MatchString(base) {
			return RedactedText
		}
		return HideURLPasswords(value)
	}
	if secretNames.MatchString(name) {
		return RedactedText
	}
	return HideURLPasswords(value)
}

// Redacted returns a deep copy of c with every secret value replaced by
// REDACTED (an empty one stays empty), by the secret tags of its fields:
// see SecretTag. The structure is kept (the same apps, receivers, keys and
// list lengths); state that is not configuration (the certificates
// Validate parsed from files) is not copied. It is what may leave the
// process: a dump, a page, a log line. c is not changed.
func (c *Config) Redacted() *Config {
	if c == nil {
		return nil
	}
	return redactCopy(reflect.ValueOf(c), NotSecret).Interface().(*Config)
}

// redactCopy deep-copies v, hiding what s and the tags below say is
// secret.
func redactCopy(v reflect.Value, s Secrecy) reflect.Value {
	t := v.Type()
	out := reflect.New(t).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(t.Elem())
			p.Elem().Set(redactCopy(v.Elem(), s))
			out.Set(p)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue // parsed state, not configuration: left zero
			}
			fs, _ := FieldSecrecy(f)
			out.Field(i).Set(redactCopy(v.Field(i), max(s, fs)))
		}
	case reflect.Slice:
		if !v.IsNil() {
			out.Set(reflect.MakeSlice(t, v.Len(), v.Len()))
			for i := range v.Len() {
				out.Index(i).Set(redactCopy(v.Index(i), s))
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			out.Index(i).Set(redactCopy(v.Index(i), s))
		}
	case reflect.Map:
		if !v.IsNil() {
			m := reflect.MakeMapWithSize(t, v.Len())
			for it := v.MapRange(); it.Next(); {
				k, e := it.Key(), it.Value()
				var ne reflect.Value
				if s == SecretByKey && k.Kind() == reflect.String && e.Kind() == reflect.String {
					ne = reflect.New(e.Type()).Elem()
					ne.SetString(RedactValue(k.String(), e.String()))
				} else {
					ne = redactCopy(e, s)
				}
				m.SetMapIndex(k, ne)
			}
			out.Set(m)
		}
	case reflect.String:
		switch x := v.String(); {
		case x == "":
		case s == NotSecret:
			out.SetString(HideURLPasswords(x))
		default:
			out.SetString(RedactedText)
		}
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		if s == NotSecret {
			out.Set(v)
		}
	default:
		// Interfaces, channels, functions: not in the schema (the test
		// that walks it refuses them); left zero rather than shown.
	}
	return out
}
