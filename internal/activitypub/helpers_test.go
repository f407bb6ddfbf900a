package activitypub

import "errors"

func isKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

func asErr(err error, e **Error) bool { return errors.As(err, e) }
