// Connection status, always on screen: connected, connecting, reconnecting
// or offline, announced politely to screen readers when it changes.

import type { ConnStatus } from '../state/session.ts';

const LABELS: Record<ConnStatus, string> = {
  connected: 'Connected',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

export function StatusBar({ status, onReconnect }: { status: ConnStatus; onReconnect: () => void }) {
  return (
    <div className="status" data-status={status}>
      <span role="status" aria-live="polite" className="status-label">
        <span className="status-dot" aria-hidden="true" />
        {LABELS[status]}
      </span>
      {status === 'offline' && (
        <button type="button" className="link-button" onClick={onReconnect}>
          Retry now
        </button>
      )}
    </div>
  );
}
