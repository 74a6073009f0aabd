package protocol

import (
	"context"
	"errors"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// submitOnce submits tx and treats "already in the log" as success, so that
// two parties may both submit the same signed transaction (the server its
// receipt, and the client the same receipt when it does not see it on the
// ledger in time) and neither fails. It returns the log index (the ledger
// reports the index of the earlier copy with CODE_DUPLICATE_TX).
func submitOnce(ctx context.Context, api ledger.API, tx []byte) (uint64, error) {
	res, err := api.Submit(ctx, tx)
	if err == nil {
		return res.GetIndex(), nil
	}
	var rj *ledger.Rejection
	if errors.As(err, &rj) && rj.Code == ledgerv1.Code_CODE_DUPLICATE_TX && res != nil {
		return res.GetIndex(), nil
	}
	return 0, err
}
