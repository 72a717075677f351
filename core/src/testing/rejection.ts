/** The error a call that must fail failed with; throws if it succeeded. */
export const rejection = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as { code: string; message: string; details: { field?: string; message: string }[] },
  );
  if (!err) throw new Error('expected the call to fail');
  return err;
};
