// Who is signed in and what their role lets the page offer (control-plane/src/admin/auth.ts).
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export interface Session { username: string; role: 'admin' | 'editor' | 'viewer' | 'auditor' }

export const SessionContext = createContext<Session>({ username: '', role: 'viewer' });
export const useSession = () => useContext(SessionContext);
/** Config writes: admins and editors (an editor scoped to tags is told by the API when a tag is missing). */
export const canWrite = (s: Session) => s.role === 'admin' || s.role === 'editor';
export const canConfig = (s: Session) => s.role !== 'auditor';
export const canAudit = (s: Session) => s.role === 'admin' || s.role === 'auditor';
